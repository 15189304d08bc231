// DICOM input through DCMTK (issue 3, method.md §7.3). Built only with SPINEMARK_DICOM; without
// it every call fails with "built without DICOM support".
//
// What image_read returns for DICOM (our choice):
//   1. stored values -> modality values: Rescale Slope/Intercept, or the Modality LUT Sequence;
//   2. VOI: the file's first VOI window (Window Center/Width, DICOM's linear function) when present,
//      else its first VOI LUT; with neither (or ImageReadOptions::dicom_apply_voi off) the range
//      of modality values present in the image (min..max) maps linearly, without clipping (not
//      the theoretical range: a 16-bit modality LUT holding values 0..600 would use 1 % of it);
//   3. the result is scaled to 0..2^b-1 with b = Bits Stored clamped to [8, 16] (Image::bits = b);
//   4. polarity: MONOCHROME1 is inverted so that, as in MONOCHROME2, dense (bone) is bright.
// Colour images are converted to luminance; multi-frame files give their first frame.
#include "models/image/image_decode.h"
#include "models/image/image_io.h"

#ifdef SPINEMARK_DICOM
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dccodec.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmimage/diregist.h>
#include <dcmtk/dcmimgle/dcmimage.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#endif

namespace sm {

#ifndef SPINEMARK_DICOM

Image dicom_read(const std::string& path, const ImageReadOptions&) {
  image_fail(path, "DICOM file, but spinemark was built without DICOM support (install libdcmtk-dev and rebuild)");
}
ImageInfo dicom_info(const std::string& path) {
  image_fail(path, "DICOM file, but spinemark was built without DICOM support (install libdcmtk-dev and rebuild)");
}

#else

namespace {

// Decoders for JPEG (baseline, extended, lossless), JPEG-LS and RLE; registered once per process.
void dicom_codecs_register() {
  static std::once_flag once;
  std::call_once(once, [] {
    OFLog::configure(OFLogger::FATAL_LOG_LEVEL);  // we report errors ourselves, one line each
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

// A transfer syntax we can decode: uncompressed, or compressed with a registered decoder (JPEG,
// JPEG-LS, RLE). DCMTK itself would only say "Missing attribute" for, say, JPEG 2000.
void dicom_xfer_check(const std::string& path, E_TransferSyntax xfer) {
  if (xfer == EXS_Unknown) image_fail(path, "DICOM file with an unknown transfer syntax (cannot tell how its pixels are encoded)");
  DcmXfer x(xfer);
  if (x.isEncapsulated() && !DcmCodecList::canChangeCoding(xfer, EXS_LittleEndianExplicit))
    image_fail(path, std::string("unsupported DICOM transfer syntax: ") + x.getXferName() + " (" + x.getXferID() +
                         "); spinemark reads uncompressed, RLE, JPEG and JPEG-LS DICOM");
}

// Pixel spacing in mm as a radiograph can have it; anything else (inf from "1e999", 1e-300, 0,
// negative) is a damaged or meaningless value and is treated as absent.
bool spacing_sane(double mm) { return std::isfinite(mm) && mm >= 1e-4 && mm <= 1e3; }

struct DicomHeader {
  int width = 0, height = 0, bits = 0, frames = 1;
  std::optional<std::array<double, 2>> spacing;
};

// Loads the data set without its large elements (the pixel data stays on disk until needed),
// with or without the file meta header, and reads what image_info reports.
DicomHeader dicom_header_load(const std::string& path, DcmFileFormat& file) {
  dicom_codecs_register();
  OFCondition st = file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
  if (st.bad()) image_fail(path, std::string("corrupt or unreadable DICOM (") + st.text() + ")");
  DcmDataset* ds = file.getDataset();
  if (!ds || !ds->tagExists(DCM_PixelData)) image_fail(path, "DICOM file without pixel data (not an image)");
  dicom_xfer_check(path, ds->getOriginalXfer());
  Uint16 rows = 0, cols = 0, bits = 0;
  if (ds->findAndGetUint16(DCM_Rows, rows).bad() || ds->findAndGetUint16(DCM_Columns, cols).bad() || !rows || !cols)
    image_fail(path, "DICOM file without valid Rows/Columns");
  if (ds->findAndGetUint16(DCM_BitsStored, bits).bad() || bits == 0 || bits > 32)
    image_fail(path, "DICOM file without valid Bits Stored");
  DicomHeader h;
  h.width = cols;
  h.height = rows;
  h.bits = bits;
  Sint32 frames = 1;
  if (ds->findAndGetSint32(DCM_NumberOfFrames, frames).good() && frames > 1) h.frames = frames;
  // Pixel Spacing (0028,0030) is the patient-plane spacing; Imager Pixel Spacing (0018,1164) the
  // detector's. Both are "row spacing \ column spacing" in mm.
  for (const DcmTagKey& tag : {DCM_PixelSpacing, DCM_ImagerPixelSpacing}) {
    Float64 r = 0, c = 0;
    if (ds->findAndGetFloat64(tag, r, 0).good() && ds->findAndGetFloat64(tag, c, 1).good() && spacing_sane(r) &&
        spacing_sane(c)) {
      h.spacing = std::array<double, 2>{r, c};
      break;
    }
  }
  return h;
}

// Rows/Columns must match the compressed JPEG frame: DCMTK would decode a smaller frame into an
// image of the header's size, padded, without a word (issue 11 item 6).
void dicom_frame_size_check(const std::string& path, DcmDataset* ds, E_TransferSyntax xfer, const DicomHeader& h) {
  if (!DcmXfer(xfer).isEncapsulated()) return;
  DcmElement* el = nullptr;
  if (ds->findAndGetElement(DCM_PixelData, el).bad() || !el) return;
  DcmPixelSequence* seq = nullptr;
  if (static_cast<DcmPixelData*>(el)->getEncapsulatedRepresentation(xfer, nullptr, seq).bad() || !seq) return;
  DcmPixelItem* item = nullptr;  // item 0 is the offset table; item 1 starts the first frame
  if (seq->card() < 2 || seq->getItem(item, 1).bad() || !item)
    image_fail(path, "corrupt DICOM (compressed pixel data without any fragment)");
  Uint8* frag = nullptr;
  if (item->getUint8Array(frag).bad() || !frag) image_fail(path, "corrupt DICOM (cannot read the first pixel data fragment)");
  const std::string b(reinterpret_cast<const char*>(frag), item->getLength());
  if (b.compare(0, 2, "\xFF\xD8") != 0) return;  // not a JPEG family stream (RLE)
  const JpegFrame f = jpeg_frame_find(path + " (DICOM pixel data)", [&b](uint64_t at, size_t n) {
    return at >= b.size() ? std::string() : b.substr(size_t(at), n);
  });
  if (f.height != h.height)
    image_fail(path, "DICOM Rows (" + std::to_string(h.height) + ") differ from the height of the compressed image (" +
                         std::to_string(f.height) + "): the header or the pixel data is damaged");
  if (f.width != h.width)
    image_fail(path, "DICOM Columns (" + std::to_string(h.width) + ") differ from the width of the compressed image (" +
                         std::to_string(f.width) + "): the header or the pixel data is damaged");
}

}  // namespace

ImageInfo dicom_info(const std::string& path) {
  DcmFileFormat file;
  DicomHeader h = dicom_header_load(path, file);
  ImageInfo info;
  info.format = "dicom";
  info.width = h.width;
  info.height = h.height;
  info.bits = h.bits;
  info.pixel_spacing_mm = h.spacing;
  return info;
}

Image dicom_read(const std::string& path, const ImageReadOptions& options) {
  DcmFileFormat file;
  DicomHeader h = dicom_header_load(path, file);
  int64_t pixels = int64_t(h.width) * int64_t(h.height);
  if (pixels > options.max_pixels)  // checked before DCMTK allocates anything for the pixels
    image_fail(path, "image too large: " + std::to_string(h.width) + "x" + std::to_string(h.height) + " = " +
                         std::to_string(pixels) + " pixels, limit " + std::to_string(options.max_pixels));
  E_TransferSyntax xfer = file.getDataset()->getOriginalXfer();
  dicom_frame_size_check(path, file.getDataset(), xfer, h);
  auto di = std::make_unique<DicomImage>(&file, xfer, CIF_UsePartialAccessToPixelData, 0, 1);
  if (di->getStatus() != EIS_Normal)
    image_fail(path, std::string("cannot decode DICOM pixel data (") + DicomImage::getString(di->getStatus()) + ")");
  if (!di->isMonochrome()) {
    std::unique_ptr<DicomImage> mono(di->createMonochromeImage());
    if (!mono || mono->getStatus() != EIS_Normal) image_fail(path, "cannot convert colour DICOM to grayscale");
    di = std::move(mono);
  }
  bool voi = false;
  if (options.dicom_apply_voi && di->getWindowCount() > 0) voi = di->setWindow(0);
  if (options.dicom_apply_voi && !voi && di->getVoiLutCount() > 0) voi = di->setVoiLut(0);
  if (!voi) di->setMinMaxWindow(0);
  const int out_bits = std::clamp(h.bits, 8, 16);
  const void* px = di->getOutputData(out_bits, 0);
  if (!px) image_fail(path, "cannot render DICOM pixel data (truncated or corrupt)");
  if (int(di->getWidth()) != h.width || int(di->getHeight()) != h.height)
    image_fail(path, "DICOM pixel data decoded to a different size than Rows/Columns say");
  Image img(int(di->getWidth()), int(di->getHeight()));
  if (out_bits <= 8) {
    const auto* p = static_cast<const Uint8*>(px);
    for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = float(p[i]);
  } else {
    const auto* p = static_cast<const Uint16*>(px);
    for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = float(p[i]);
  }
  img.bits = out_bits;
  img.format = "dicom";
  img.pixel_spacing_mm = h.spacing;
  return img;
}

#endif

}  // namespace sm

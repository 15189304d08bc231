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
#include "train/image_io.h"

#ifdef SPINEMARK_DICOM
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmimage/diregist.h>
#include <dcmtk/dcmimgle/dcmimage.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include <algorithm>
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
    if (ds->findAndGetFloat64(tag, r, 0).good() && ds->findAndGetFloat64(tag, c, 1).good() && r > 0 && c > 0) {
      h.spacing = std::array<double, 2>{r, c};
      break;
    }
  }
  return h;
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

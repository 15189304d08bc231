# Regenerates build_info.h at every build (not only at configure time), so that
# `spinemark version` names the revision the binary was built from; "-dirty" marks
# uncommitted changes. Rewrites the header only when its content changes.
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${SRC}
                OUTPUT_VARIABLE SPINEMARK_GIT_REVISION OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT SPINEMARK_GIT_REVISION)
  set(SPINEMARK_GIT_REVISION "unknown")
else()
  execute_process(COMMAND git diff --quiet HEAD WORKING_DIRECTORY ${SRC} RESULT_VARIABLE dirty ERROR_QUIET)
  if(NOT dirty EQUAL 0)
    string(APPEND SPINEMARK_GIT_REVISION "-dirty")
  endif()
endif()
configure_file(${SRC}/tensor/build_info.h.in ${OUT}.tmp @ONLY)
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})
file(REMOVE ${OUT}.tmp)

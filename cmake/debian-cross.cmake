# debian-cross.cmake - CMake toolchain file for Debian's cross compilers and multiarch libraries
# (gcc-aarch64-linux-gnu + libfoo-dev:arm64, gcc-arm-linux-gnueabihf + libfoo-dev:armhf). The
# target is the GNU triplet in EI_CROSS_TRIPLET (cache variable or environment), e.g.
#   EI_CROSS_TRIPLET=aarch64-linux-gnu cmake -DCMAKE_TOOLCHAIN_FILE=cmake/debian-cross.cmake ...
# scripts/package.sh arm64|armhf runs it inside a Debian 12 cross root (packaging/debroot.py).
if(NOT EI_CROSS_TRIPLET)
  set(EI_CROSS_TRIPLET "$ENV{EI_CROSS_TRIPLET}")
endif()
if(NOT EI_CROSS_TRIPLET)
  message(FATAL_ERROR "debian-cross.cmake: set EI_CROSS_TRIPLET (e.g. aarch64-linux-gnu)")
endif()
# try_compile re-reads this file in a fresh project: hand it the triplet
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EI_CROSS_TRIPLET)

set(CMAKE_SYSTEM_NAME Linux)
string(REGEX REPLACE "-.*" "" CMAKE_SYSTEM_PROCESSOR "${EI_CROSS_TRIPLET}")
set(CMAKE_C_COMPILER ${EI_CROSS_TRIPLET}-gcc)
# Debian's multiarch layout: headers in /usr/include(/<triplet>), libraries and their CMake and
# pkg-config files in /usr/lib/<triplet>; the triplet's pkg-config wrapper (from pkgconf:<arch>)
# searches only those.
set(CMAKE_LIBRARY_ARCHITECTURE ${EI_CROSS_TRIPLET})
set(PKG_CONFIG_EXECUTABLE ${EI_CROSS_TRIPLET}-pkg-config CACHE FILEPATH "pkg-config for the target")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# Third-party libraries, all from Debian (scripts/deps.sh installs them).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

# nanopb: generator from the `nanopb` package, runtime compiled from Debian's source
# package of the same version (fetched into .deps/nanopb by deps.sh) so that sanitizer and
# fuzzer builds instrument it.
find_program(DFNET_PROTOC protoc REQUIRED)
find_program(DFNET_PROTOC_GEN_NANOPB protoc-gen-nanopb REQUIRED)
set(DFNET_NANOPB_SRC "${DFNET_DEPS_PREFIX}/nanopb")
if(NOT EXISTS "${DFNET_NANOPB_SRC}/pb_decode.c")
  message(FATAL_ERROR "nanopb runtime sources missing in ${DFNET_NANOPB_SRC}: run scripts/deps.sh")
endif()
add_library(dfnet_nanopb STATIC
  ${DFNET_NANOPB_SRC}/pb_common.c ${DFNET_NANOPB_SRC}/pb_encode.c ${DFNET_NANOPB_SRC}/pb_decode.c)
target_include_directories(dfnet_nanopb SYSTEM PUBLIC ${DFNET_NANOPB_SRC})
set_target_properties(dfnet_nanopb PROPERTIES POSITION_INDEPENDENT_CODE ON)
add_library(dfnet::nanopb ALIAS dfnet_nanopb)

# mbedTLS 2.28 (Debian): TLS, X.509, keys, SHA-256.
find_library(MBEDTLS_LIBRARY mbedtls REQUIRED)
find_library(MBEDX509_LIBRARY mbedx509 REQUIRED)
find_library(MBEDCRYPTO_LIBRARY mbedcrypto REQUIRED)
find_path(MBEDTLS_INCLUDE_DIR mbedtls/ssl.h REQUIRED)
add_library(dfnet::mbedtls INTERFACE IMPORTED)
target_link_libraries(dfnet::mbedtls INTERFACE
  ${MBEDTLS_LIBRARY} ${MBEDX509_LIBRARY} ${MBEDCRYPTO_LIBRARY})
target_include_directories(dfnet::mbedtls INTERFACE ${MBEDTLS_INCLUDE_DIR})

# libwebsockets 4.1.x, static, built against mbedTLS by deps.sh into .deps/prefix.
# Its pkg-config file names the wrong library and omits mbedTLS, so we link it here.
set(DFNET_LWS_PREFIX "${DFNET_DEPS_PREFIX}/prefix")
find_library(LWS_LIBRARY NAMES libwebsockets.a PATHS "${DFNET_LWS_PREFIX}/lib" NO_DEFAULT_PATH)
if(NOT LWS_LIBRARY)
  message(FATAL_ERROR "libwebsockets (mbedTLS build) missing in ${DFNET_LWS_PREFIX}: run scripts/deps.sh")
endif()
file(STRINGS "${DFNET_LWS_PREFIX}/include/lws_config.h" _lws_mbedtls REGEX "#define LWS_WITH_MBEDTLS")
if(NOT _lws_mbedtls)
  message(FATAL_ERROR "${DFNET_LWS_PREFIX} holds a libwebsockets without LWS_WITH_MBEDTLS")
endif()
# An IMPORTED STATIC target (not a path inside an INTERFACE one), so that CMake puts
# mbedTLS after libwebsockets.a on every link line, whatever else pulled mbedTLS in first.
add_library(dfnet::lws STATIC IMPORTED)
set_target_properties(dfnet::lws PROPERTIES IMPORTED_LOCATION "${LWS_LIBRARY}")
target_include_directories(dfnet::lws SYSTEM INTERFACE "${DFNET_LWS_PREFIX}/include")
target_link_libraries(dfnet::lws INTERFACE dfnet::mbedtls Threads::Threads ${CMAKE_DL_LIBS} m)

pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
pkg_check_modules(LIBUSB REQUIRED IMPORTED_TARGET libusb-1.0)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(UMOCKDEV IMPORTED_TARGET umockdev-1.0)

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

# libwebsockets 4.1.x, static, built against mbedTLS by deps.sh into .deps/prefix. We link
# what lws's own build says it needs: its exported CMake package (the `websockets` IMPORTED
# STATIC target, whose link interface lists mbedTLS and whatever else lws was configured
# with, so CMake puts those after libwebsockets.a on every link line; and the extra system
# libraries it asks for). Only that prefix is searched, so a Debian libwebsockets-dev (built
# on OpenSSL) installed on the machine is never picked up; its headers in /usr/include come
# after ours, which are a SYSTEM include directory of this target.
set(DFNET_LWS_PREFIX "${DFNET_DEPS_PREFIX}/prefix")
find_package(libwebsockets CONFIG PATHS "${DFNET_LWS_PREFIX}/lib/cmake/libwebsockets"
  NO_DEFAULT_PATH)
if(NOT libwebsockets_FOUND OR NOT TARGET websockets)
  message(FATAL_ERROR "libwebsockets (mbedTLS build) missing in ${DFNET_LWS_PREFIX}: run scripts/deps.sh")
endif()
file(STRINGS "${DFNET_LWS_PREFIX}/include/lws_config.h" _lws_mbedtls REGEX "#define LWS_WITH_MBEDTLS")
if(NOT _lws_mbedtls)
  message(FATAL_ERROR "${DFNET_LWS_PREFIX} holds a libwebsockets without LWS_WITH_MBEDTLS")
endif()
add_library(dfnet::lws INTERFACE IMPORTED)
target_include_directories(dfnet::lws SYSTEM INTERFACE "${DFNET_LWS_PREFIX}/include")
target_link_libraries(dfnet::lws INTERFACE websockets ${LIBWEBSOCKETS_DEP_LIBS} dfnet::mbedtls
  Threads::Threads)

pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
pkg_check_modules(LIBUSB REQUIRED IMPORTED_TARGET libusb-1.0)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(UMOCKDEV IMPORTED_TARGET umockdev-1.0)

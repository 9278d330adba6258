# Driver packages: deterministic ustar archives named by SHA-256 (lib/package.h).
# Shared by the manager's package store, the host agent's cache and the CLI.
pkg_check_modules(LIBARCHIVE REQUIRED IMPORTED_TARGET GLOBAL libarchive)
add_library(dfnet_package STATIC ${CMAKE_CURRENT_LIST_DIR}/package.c)
target_compile_options(dfnet_package PRIVATE ${DFNET_WARNINGS})
target_link_libraries(dfnet_package PUBLIC dfnet_common dfnet::mbedtls
  PRIVATE PkgConfig::LIBARCHIVE)
set_target_properties(dfnet_package PROPERTIES POSITION_INDEPENDENT_CODE ON)

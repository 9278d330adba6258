# libdfnet-pki: the manager's CA and certificates on mbedTLS (lib/pki.h; issue 3 "PKI").
# Included from lib/CMakeLists.txt.
add_library(dfnet_pki STATIC ${CMAKE_CURRENT_LIST_DIR}/pki.c)
target_compile_options(dfnet_pki PRIVATE ${DFNET_WARNINGS})
target_link_libraries(dfnet_pki PUBLIC dfnet_common dfnet::mbedtls)
set_target_properties(dfnet_pki PROPERTIES POSITION_INDEPENDENT_CODE ON)

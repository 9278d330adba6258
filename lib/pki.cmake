# libdfnet-pki: the manager's CA and certificates on mbedTLS (lib/pki.h; issue 3 "PKI"),
# and the role table (lib/role.h): who a certificate speaks for.
# Included from lib/CMakeLists.txt.
add_library(dfnet_pki STATIC
  ${CMAKE_CURRENT_LIST_DIR}/pki.c
  ${CMAKE_CURRENT_LIST_DIR}/pki_x509.c
  ${CMAKE_CURRENT_LIST_DIR}/pki_files.c
  ${CMAKE_CURRENT_LIST_DIR}/pki_verify.c
  ${CMAKE_CURRENT_LIST_DIR}/pki_state.c
  ${CMAKE_CURRENT_LIST_DIR}/pki_random.c
  ${CMAKE_CURRENT_LIST_DIR}/pki_pin.c
  ${CMAKE_CURRENT_LIST_DIR}/pki_csr.c
  ${CMAKE_CURRENT_LIST_DIR}/role.c)
target_compile_options(dfnet_pki PRIVATE ${DFNET_WARNINGS})
target_link_libraries(dfnet_pki PUBLIC dfnet_common dfnet::mbedtls)
set_target_properties(dfnet_pki PROPERTIES POSITION_INDEPENDENT_CODE ON)

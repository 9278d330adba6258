# transport_bench (issue 3): RTT, raw-TLS floor, throughput, MB/s, handshake on loopback.
add_executable(transport_bench transport_bench.c)
target_compile_options(transport_bench PRIVATE ${DFNET_WARNINGS})
target_include_directories(transport_bench PRIVATE "${CMAKE_SOURCE_DIR}/tests/transport")
target_link_libraries(transport_bench PRIVATE dfnet_transport_testlib dfnet::mbedtls)

# handshake_cost (issue 23 item 5): the manager's share of a full mutual ECDHE-ECDSA P-256
# handshake, call by call with mbedTLS 2.28 (ECDHE, ECDH, ECDSA sign and verify, the peer
# certificate's parse), beside opening an RFC 5077 ticket; Debian's ECP settings.
add_executable(handshake_cost handshake_cost.c)
target_compile_options(handshake_cost PRIVATE ${DFNET_WARNINGS})
target_include_directories(handshake_cost PRIVATE "${CMAKE_SOURCE_DIR}/tests/transport")
target_link_libraries(handshake_cost PRIVATE dfnet_transport_testlib dfnet::mbedtls)

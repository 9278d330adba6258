# transport_bench (issue 3): RTT, raw-TLS floor, throughput, MB/s, handshake on loopback.
add_executable(transport_bench transport_bench.c)
target_compile_options(transport_bench PRIVATE ${DFNET_WARNINGS})
target_include_directories(transport_bench PRIVATE "${CMAKE_SOURCE_DIR}/tests/transport")
target_link_libraries(transport_bench PRIVATE dfnet_transport_testlib dfnet::mbedtls)

# rpc_bench (issue 7): calls through libdfnet-client. Until the end-to-end fabric is wired
# in (manager + host agent + echo driver), it measures the single hop: the client library
# against the scripted manager peer of tests/clients (real transport, real TLS).
if(TARGET dfnet_client_static AND TARGET dfnet_scripted_server)
  add_executable(rpc_bench rpc_bench.c)
  target_compile_options(rpc_bench PRIVATE ${DFNET_WARNINGS})
  target_include_directories(rpc_bench PRIVATE "${CMAKE_SOURCE_DIR}/tests/clients")
  target_link_libraries(rpc_bench PRIVATE dfnet_client_static dfnet_scripted_server)
endif()

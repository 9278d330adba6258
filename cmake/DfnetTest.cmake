# dfnet_test(<name> SOURCES <src>... [LIBS <lib>...] [LABELS <label>...] [TIMEOUT <s>])
# A cmocka test program registered with ctest. Tests never assert timings. Every test links
# dfnet_test_child (tests/child.h): the processes it starts never outlive it.
function(dfnet_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_compile_options(${name} PRIVATE ${DFNET_WARNINGS})
  target_link_libraries(${name} PRIVATE ${T_LIBS} dfnet_test_child PkgConfig::CMOCKA)
  target_include_directories(${name} PRIVATE "${CMAKE_SOURCE_DIR}/tests")
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "DFNET_SOURCE_DIR=${CMAKE_SOURCE_DIR};DFNET_BUILD_DIR=${CMAKE_BINARY_DIR}")
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()

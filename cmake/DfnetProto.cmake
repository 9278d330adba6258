# dfnet_proto_library(<target> ROOT <dir> PROTOS <file.proto>...)
# Generates nanopb C for each .proto (with its sibling .options) into the build tree and
# builds it as a static library whose include root is the generated tree, so sources
# write #include "dfnet/v1/envelope.pb.h". Generated code is never committed.
function(dfnet_proto_library target)
  cmake_parse_arguments(P "" "ROOT" "PROTOS" ${ARGN})
  set(out "${CMAKE_CURRENT_BINARY_DIR}/gen")
  set(srcs)
  foreach(proto ${P_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" stem "${proto}")
    set(deps "${P_ROOT}/${proto}")
    if(EXISTS "${P_ROOT}/${stem}.options")
      list(APPEND deps "${P_ROOT}/${stem}.options")
    endif()
    add_custom_command(
      OUTPUT "${out}/${stem}.pb.c" "${out}/${stem}.pb.h"
      COMMAND ${CMAKE_COMMAND} -E make_directory "${out}"
      COMMAND ${DFNET_PROTOC} --plugin=protoc-gen-nanopb=${DFNET_PROTOC_GEN_NANOPB}
              --nanopb_opt=-I${P_ROOT} --nanopb_out=${out} -I. ${proto}
      WORKING_DIRECTORY "${P_ROOT}"
      DEPENDS ${deps}
      COMMENT "nanopb: ${proto}"
      VERBATIM)
    list(APPEND srcs "${out}/${stem}.pb.c")
  endforeach()
  add_library(${target} STATIC ${srcs})
  target_include_directories(${target} PUBLIC "${out}")
  target_link_libraries(${target} PUBLIC dfnet::nanopb)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

# bind: the compiler on arbitrary text; the decoder + dumper + matcher on arbitrary bytes.
dfnet_fuzzer(fuzz_bind_parser fuzz_bind_parser.c)
target_link_libraries(fuzz_bind_parser PRIVATE dfnet_bind)
dfnet_fuzzer(fuzz_bind_decoder fuzz_bind_decoder.c)
target_link_libraries(fuzz_bind_decoder PRIVATE dfnet_bind)

# perf/reduce_bench: Google Benchmark of the host reduction loops against
# memcpy. It tests internals (chorus_core), not the public API. Skipped when
# Google Benchmark (Debian: libbenchmark-dev) is not installed.
find_package(benchmark QUIET)
if(benchmark_FOUND)
  add_executable(reduce_bench ${CMAKE_CURRENT_LIST_DIR}/reduce_bench.cc)
  target_link_libraries(reduce_bench PRIVATE chorus_core benchmark::benchmark)
  target_compile_options(reduce_bench PRIVATE ${CHORUS_WARNINGS})
else()
  message(STATUS "Chorus: Google Benchmark not found; perf/reduce_bench is not built")
endif()

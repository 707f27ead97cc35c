# Google Benchmarks of the reduction loops (they test internals, chorus_core,
# not the public API), skipped when Google Benchmark (Debian:
# libbenchmark-dev) is not installed:
#   reduce_bench         the host loops against memcpy
#   device_reduce_bench  the device reduce-copy kernel against cudaMemcpyAsync,
#                        timed with CUDA events (built with CUDA only; without
#                        a GPU it says so and exits 0)
find_package(benchmark QUIET)
if(benchmark_FOUND)
  set(CHORUS_REDUCE_BENCHES reduce_bench)
  if(CHORUS_HAVE_CUDA)
    list(APPEND CHORUS_REDUCE_BENCHES device_reduce_bench)
  endif()
  foreach(bench IN LISTS CHORUS_REDUCE_BENCHES)
    add_executable(${bench} ${CMAKE_CURRENT_LIST_DIR}/${bench}.cc)
    target_link_libraries(${bench} PRIVATE chorus_core benchmark::benchmark)
    target_compile_options(${bench} PRIVATE ${CHORUS_WARNINGS})
  endforeach()
else()
  message(STATUS "Chorus: Google Benchmark not found; perf/reduce_bench and perf/device_reduce_bench are not built")
endif()

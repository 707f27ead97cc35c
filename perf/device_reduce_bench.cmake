# perf/device_reduce_bench: Google Benchmark of the device reduce-copy kernel
# against cudaMemcpyAsync, timed with CUDA events. It tests internals
# (chorus_core). Built only with CUDA and Google Benchmark; on a machine
# without a GPU it says so and exits 0.
if(CHORUS_HAVE_CUDA)
  find_package(benchmark QUIET)
  if(benchmark_FOUND)
    add_executable(device_reduce_bench ${CMAKE_CURRENT_LIST_DIR}/device_reduce_bench.cc)
    target_link_libraries(device_reduce_bench PRIVATE chorus_core benchmark::benchmark)
    target_compile_options(device_reduce_bench PRIVATE ${CHORUS_WARNINGS})
  else()
    message(STATUS "Chorus: Google Benchmark not found; perf/device_reduce_bench is not built")
  endif()
endif()

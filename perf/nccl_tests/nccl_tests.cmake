# perf/nccl_tests: nccl-tests-style benchmarks (all_reduce_perf, ...), written
# against the public API only (nccl.h, libnccl.so.2). The shared machinery is
# the static library perf_common; each program is one short file describing
# its collective. See docs/perf_tools.md.
set(CHORUS_PERF_DIR ${CMAKE_CURRENT_LIST_DIR})

# MPI is optional: with it, a program started by mpirun shares the unique id
# over MPI. Prefer Open MPI where Debian installs both it and MPICH.
option(CHORUS_PERF_MPI "Build the perf programs with MPI when it is found" ON)
set(CHORUS_PERF_HAVE_MPI OFF)
if(CHORUS_PERF_MPI)
  if(NOT MPI_C_COMPILER AND EXISTS /usr/bin/mpicc.openmpi)
    set(MPI_C_COMPILER /usr/bin/mpicc.openmpi CACHE FILEPATH "MPI C compiler wrapper")
  endif()
  find_package(MPI COMPONENTS C QUIET)
  if(MPI_C_FOUND)
    set(CHORUS_PERF_HAVE_MPI ON)
  endif()
endif()
message(STATUS "Chorus: perf programs with MPI ${CHORUS_PERF_HAVE_MPI}")

add_library(perf_common STATIC
  ${CHORUS_PERF_DIR}/bench.cc
  ${CHORUS_PERF_DIR}/buffer_io.cc
  ${CHORUS_PERF_DIR}/json_writer.cc
  ${CHORUS_PERF_DIR}/launch.cc
  ${CHORUS_PERF_DIR}/memory.cc
  ${CHORUS_PERF_DIR}/options.cc
  ${CHORUS_PERF_DIR}/pattern.cc
  ${CHORUS_PERF_DIR}/perf_main.cc
  ${CHORUS_PERF_DIR}/perf_types.cc
  ${CHORUS_PERF_DIR}/report.cc
  ${CHORUS_PERF_DIR}/thread_ranks.cc)
target_include_directories(perf_common PUBLIC ${CHORUS_PERF_DIR})
target_link_libraries(perf_common PUBLIC nccl Threads::Threads)
target_compile_options(perf_common PRIVATE ${CHORUS_WARNINGS})
if(CHORUS_HAVE_CUDA)
  target_compile_definitions(perf_common PRIVATE CHORUS_PERF_CUDA=1)
  target_link_libraries(perf_common PUBLIC CUDA::cudart)
endif()
if(CHORUS_PERF_HAVE_MPI)
  # The C API only: no MPI C++ bindings (which need their own library).
  target_compile_definitions(perf_common PRIVATE CHORUS_PERF_MPI=1 OMPI_SKIP_MPICXX=1
                             MPICH_SKIP_MPICXX=1)
  target_link_libraries(perf_common PUBLIC MPI::MPI_C)
endif()

set(CHORUS_PERF_PROGRAMS
  all_reduce_perf all_gather_perf broadcast_perf reduce_perf reduce_scatter_perf
  alltoall_perf gather_perf scatter_perf sendrecv_perf hypercube_perf)
foreach(program ${CHORUS_PERF_PROGRAMS})
  add_executable(${program} ${CHORUS_PERF_DIR}/${program}.cc)
  target_link_libraries(${program} PRIVATE perf_common)
  target_compile_options(${program} PRIVATE ${CHORUS_WARNINGS})
endforeach()

if(CHORUS_TESTS)
  # perf/ is added before the top level enables testing; enable it here too.
  enable_testing()
  include(${CHORUS_PERF_DIR}/tests.cmake)
endif()

# perf/compare: the same benchmark core (bench_core.h) over Chorus and, when
# their libraries are present, Gloo; the MPI backends (backend_mpi.cc) are
# compiled by perf/compare/compare.py with mpicxx.openmpi and mpicxx.mpich.
# Benchmarks, not tests: nothing here is registered with ctest.
set(CHORUS_COMPARE_DIR ${CMAKE_CURRENT_BINARY_DIR}/compare)

add_executable(compare_chorus ${CMAKE_CURRENT_LIST_DIR}/backend_chorus.cc)
target_link_libraries(compare_chorus PRIVATE nccl)
target_compile_options(compare_chorus PRIVATE ${CHORUS_WARNINGS})
set_target_properties(compare_chorus PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CHORUS_COMPARE_DIR})

# Debian's libgloo-dev installs a CMake package (target `gloo`, TCP transport).
find_package(Gloo CONFIG QUIET)
if(Gloo_FOUND AND TARGET gloo)
  add_executable(compare_gloo ${CMAKE_CURRENT_LIST_DIR}/backend_gloo.cc)
  target_link_libraries(compare_gloo PRIVATE gloo)
  # The package records no Debian revision; the version shown in results.
  execute_process(COMMAND dpkg-query -W -f=\${Version} libgloo-dev
                  OUTPUT_VARIABLE CHORUS_GLOO_VERSION ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT CHORUS_GLOO_VERSION)
    set(CHORUS_GLOO_VERSION "${GLOO_VERSION}")
  endif()
  target_compile_definitions(compare_gloo PRIVATE GLOO_DEBIAN_VERSION="${CHORUS_GLOO_VERSION}")
  target_compile_options(compare_gloo PRIVATE ${CHORUS_WARNINGS})
  set_target_properties(compare_gloo PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CHORUS_COMPARE_DIR})
else()
  message(STATUS "Chorus: Gloo (Debian: libgloo-dev) not found; perf/compare builds no Gloo backend")
endif()

# The machine's state before each run: a cache line's round trip between two CPUs.
add_executable(compare_round_trip ${CMAKE_CURRENT_LIST_DIR}/core_round_trip.cc)
target_link_libraries(compare_round_trip PRIVATE Threads::Threads)
target_compile_options(compare_round_trip PRIVATE ${CHORUS_WARNINGS})
set_target_properties(compare_round_trip PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CHORUS_COMPARE_DIR})

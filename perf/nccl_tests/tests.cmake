# ctest tests for the benchmarks (label "unit"): every program on 2 and 3
# threads over a small sweep, checked exactly (check_perf_run.sh reads the
# #wrong columns and the summary); bad arguments; the checker's own test hook;
# groups, aggregation, blocking and timeouts; the JSON file; processes
# launched through the environment (as torchrun does); the fp8/half/bf16 codec.
# Tests bind communicators to the host (CHORUS_DEVICE=host), so they also pass
# on a GPU machine while GPU communicators reject operations.
set(CHORUS_PERF_CHECK ${CHORUS_PERF_DIR}/check_perf_run.sh)

function(chorus_perf_test name)
  add_test(NAME perf.${name} COMMAND ${CHORUS_PERF_CHECK} ${ARGN})
  set_tests_properties(perf.${name} PROPERTIES LABELS "unit" TIMEOUT 120
                       ENVIRONMENT "CHORUS_DEVICE=host")
endfunction()

# Few iterations: these runs check results; speed is not measured here.
set(quick -n 2 -w 1)
set(sweep -b 1 -e 64K -f 16)  # 1, 16, 256, 4K, 64K bytes: counts 0, tiny, several slices
set(some_types -d half,bfloat16,f8e4m3,f8e5m2,int64)

# AllReduce: every datatype with every operator at small sizes, then a sweep.
chorus_perf_test(all_reduce.t2_all_types_all_ops --
  $<TARGET_FILE:all_reduce_perf> -t 2 -b 1 -e 4K -f 8 -d all -o all ${quick})
chorus_perf_test(all_reduce.t3 --
  $<TARGET_FILE:all_reduce_perf> -t 3 -b 1 -e 1M -f 16 ${some_types} -o sum,avg,premulsum ${quick})

# Reduce and ReduceScatter: every datatype and operator at small sizes on 2
# threads; a sweep with every root on 3.
foreach(program reduce_perf reduce_scatter_perf)
  string(REPLACE "_perf" "" short ${program})
  chorus_perf_test(${short}.t2 -- $<TARGET_FILE:${program}> -t 2 -b 1 -e 4K -f 8 -d all -o all ${quick})
  chorus_perf_test(${short}.t3 --
    $<TARGET_FILE:${program}> -t 3 ${sweep} ${some_types} -o sum,max,premulsum -r all ${quick})
endforeach()

foreach(program all_gather_perf broadcast_perf alltoall_perf gather_perf scatter_perf sendrecv_perf)
  string(REPLACE "_perf" "" short ${program})
  chorus_perf_test(${short}.t2 -- $<TARGET_FILE:${program}> -t 2 ${sweep} -d all -r all ${quick})
  chorus_perf_test(${short}.t3 -- $<TARGET_FILE:${program}> -t 3 ${sweep} ${some_types} -r all ${quick})
endforeach()

# HyperCube needs a power-of-two rank count: 3 ranks print a note and no rows.
chorus_perf_test(hypercube.t2 -- $<TARGET_FILE:hypercube_perf> -t 2 ${sweep} -d all ${quick})
chorus_perf_test(hypercube.t3_skips --no-rows --text "not a power of 2" --
  $<TARGET_FILE:hypercube_perf> -t 3 ${sweep} ${quick})
# Two communicators per thread, aggregated: each stage is still its own group.
chorus_perf_test(hypercube.t2_g2_m3 --
  $<TARGET_FILE:hypercube_perf> -t 2 -g 2 -m 3 ${sweep} ${some_types} ${quick})

# Several communicators per thread (groups), aggregation, blocking mode,
# non-blocking communicators with a timeout, min/max/rank-0 time.
chorus_perf_test(all_reduce.t2_g2_m4_z_T --
  $<TARGET_FILE:all_reduce_perf> -t 2 -g 2 -m 4 -z 1 -T 60 -a 3 ${sweep} -d half -o all ${quick})
# Registered buffers (-R 1): host communicators record them and give the same results.
chorus_perf_test(all_reduce.t2_registered --
  $<TARGET_FILE:all_reduce_perf> -t 2 -R 1 ${sweep} -o sum,premulsum ${quick})
chorus_perf_test(sendrecv.t1_g3_m2 --
  $<TARGET_FILE:sendrecv_perf> -t 1 -g 3 -m 2 -a 2 ${sweep} ${some_types} ${quick})
chorus_perf_test(gather.t2_g2_T --
  $<TARGET_FILE:gather_perf> -t 2 -g 2 -T 60 -a 0 -i 3000 -b 0 -e 12K -d bfloat16 -r all ${quick})

# The checker catches a wrong element: the hook flips one bit on rank 0.
add_test(NAME perf.checker_catches_a_flipped_bit
  COMMAND ${CHORUS_PERF_CHECK} --exit 7 --wrong --text "expected" --
          $<TARGET_FILE:all_reduce_perf> -t 2 -b 64 -e 1K -f 4 ${quick})
set_tests_properties(perf.checker_catches_a_flipped_bit PROPERTIES LABELS "unit" TIMEOUT 60
                     ENVIRONMENT "CHORUS_DEVICE=host;CHORUS_PERF_CORRUPT=1")

# Bad arguments: exit 1 with a message, before any communicator exists.
set(bad_arguments
  "minbytes|invalid value 'abc' for -b|-b abc"
  "threads|invalid value '0' for -t|-t 0"
  "datatype|invalid value 'nosuch' for -d|-d nosuch"
  "op|invalid value 'foo' for -o|-o foo"
  "unknown|unknown option '--bogus'|--bogus"
  "missing_value|needs a value|-e"
  "sizes|minbytes 1048576 > maxbytes 1024|-b 1M -e 1K"
  "root|root 5 is not a rank|-t 2 -r 5"
  "suffix|invalid value '1X' for -e|-e 1X"
  "average|invalid value '4' for -a|-a 4"
  "register|symmetric (window) registration is not built|-R 2"
  "long_missing_value|option '--iters' needs a value|--iters"
  "step_zero|-i is 0 bytes: need a positive step|-b 1K -e 4K -i 0"
  "json_no_directory|cannot write the JSON file there (directory /nonexistent-chorus-dir: No such file|-J /nonexistent-chorus-dir/r.json"
  "json_not_a_file|cannot write the JSON file there (it is not a regular file)|-J /")
foreach(entry ${bad_arguments})
  string(REPLACE "|" ";" fields "${entry}")
  list(GET fields 0 name)
  list(GET fields 1 text)
  list(GET fields 2 words)
  separate_arguments(arguments UNIX_COMMAND "${words}")
  chorus_perf_test(bad_argument.${name} --exit 1 --text "${text}" --
    $<TARGET_FILE:reduce_perf> ${arguments})
endforeach()

# The JSON file holds one record per row.
chorus_perf_test(json_output --json ${CMAKE_CURRENT_BINARY_DIR}/perf_json_test.json --
  $<TARGET_FILE:broadcast_perf> -t 2 -b 8 -e 8K -f 8 -d float,int8 -r all ${quick}
  -J ${CMAKE_CURRENT_BINARY_DIR}/perf_json_test.json)

# A bad launch environment is refused before any NCCL call, with code 1.
chorus_perf_test(bad_environment.master_port --exit 1 --text "MASTER_PORT=+29500 is not a port number" --
  env RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=+29500 $<TARGET_FILE:reduce_perf> -b 8 -e 8)

# Two processes, launched through RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT,
# with two threads each.
add_test(NAME perf.two_processes_from_environment
  COMMAND ${CHORUS_PERF_DIR}/run_from_env.sh 2 $<TARGET_FILE:all_reduce_perf> -t 2 ${sweep}
          -d float,f8e4m3 -o sum,min ${quick})
set_tests_properties(perf.two_processes_from_environment PROPERTIES LABELS "unit" TIMEOUT 120
                     ENVIRONMENT "CHORUS_DEVICE=host")

# The half/bfloat16/fp8 codec the checker relies on.
add_executable(perf_types_test ${CHORUS_PERF_DIR}/perf_types_test.cc)
target_link_libraries(perf_types_test PRIVATE perf_common)
target_compile_options(perf_types_test PRIVATE ${CHORUS_WARNINGS})
add_test(NAME perf.types_codec COMMAND perf_types_test)
set_tests_properties(perf.types_codec PROPERTIES LABELS "unit" TIMEOUT 30)

# mpirun, where the programs have MPI and Debian's Open MPI launcher is here.
find_program(CHORUS_PERF_MPIRUN NAMES mpirun.openmpi)
if(CHORUS_PERF_HAVE_MPI AND CHORUS_PERF_MPIRUN)
  add_test(NAME perf.two_processes_under_mpirun
    COMMAND ${CHORUS_PERF_CHECK} --text "launched by mpirun" --
            ${CHORUS_PERF_MPIRUN} --allow-run-as-root --oversubscribe -np 2
            $<TARGET_FILE:reduce_scatter_perf> -t 2 ${sweep} -d float,half -o sum,prod ${quick})
  # Open MPI's own allocations are not ours to leak-check under ASan.
  set_tests_properties(perf.two_processes_under_mpirun PROPERTIES LABELS "unit" TIMEOUT 120
                       ENVIRONMENT "CHORUS_DEVICE=host;ASAN_OPTIONS=detect_leaks=0")
endif()

# Launched by chorusrun, one process per rank: the processes meet through the
# environment chorusrun sets, results are exact; a rank that fails (here every
# rank finds wrong results through the test hook and exits 7) makes chorusrun
# stop the others and exit with that code.
if(TARGET chorusrun)
  chorus_perf_test(chorusrun_four_processes --text "launched by" --
    $<TARGET_FILE:chorusrun> -n 4 --timeout 100 $<TARGET_FILE:all_reduce_perf>
    -b 8 -e 4M -f 8 -d float,bfloat16 -o sum,premulsum ${quick})
  # Registered ncclMemAlloc blocks (-R 1) between processes asked to copy
  # through the kernel at every size: exact (lent where the machine allows
  # kernel copies; that they are lent is CollectivesOnLentHostBlocks' check).
  chorus_perf_test(chorusrun_registered_host_blocks --
    $<TARGET_FILE:chorusrun> -n 3 --timeout 100 -x CHORUS_CMA=1 -x CHORUS_CMA_BYTES=0
    -x CHORUS_CMA_ONE_WAY_BYTES=0 -x CHORUS_CMA_SHARED_CORES_BYTES=0
    $<TARGET_FILE:all_reduce_perf> -R 1 -b 8 -e 4M -f 8 -d float,bfloat16 -o sum,premulsum ${quick})
  chorus_perf_test(chorusrun_every_collective --
    $<TARGET_FILE:chorusrun> -n 3 --timeout 100 $<TARGET_FILE:all_gather_perf> -b 8 -e 1M -f 32 ${quick})
  # Rank 0 still prints its summary (FAILED) and writes its JSON file, which
  # the other rank, failing first, must not cut short.
  add_test(NAME perf.chorusrun_failing_ranks_give_nonzero_exit
    COMMAND ${CHORUS_PERF_CHECK} --exit 7 --wrong --text "exited with code 7"
            --json ${CMAKE_CURRENT_BINARY_DIR}/perf_failing_ranks.json --
            $<TARGET_FILE:chorusrun> -n 2 --timeout 100 -x CHORUS_PERF_CORRUPT=1
            $<TARGET_FILE:all_reduce_perf> -b 1K -e 4K -f 2 ${quick}
            -J ${CMAKE_CURRENT_BINARY_DIR}/perf_failing_ranks.json)
  set_tests_properties(perf.chorusrun_failing_ranks_give_nonzero_exit PROPERTIES
                       LABELS "unit" TIMEOUT 120 ENVIRONMENT "CHORUS_DEVICE=host")
endif()

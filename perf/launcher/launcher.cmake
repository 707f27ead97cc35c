# perf/launcher: chorusrun, which starts N ranks of a program on this machine
# with torchrun-style variables (docs/launching.md). It does not use the library.
set(CHORUSRUN_DIR ${CMAKE_CURRENT_LIST_DIR})
add_executable(chorusrun
  ${CHORUSRUN_DIR}/main.cc
  ${CHORUSRUN_DIR}/options.cc
  ${CHORUSRUN_DIR}/environment.cc
  ${CHORUSRUN_DIR}/free_port.cc
  ${CHORUSRUN_DIR}/signals.cc
  ${CHORUSRUN_DIR}/spawn.cc
  ${CHORUSRUN_DIR}/prefixed_output.cc
  ${CHORUSRUN_DIR}/supervisor.cc)
target_compile_options(chorusrun PRIVATE ${CHORUS_WARNINGS})
install(TARGETS chorusrun RUNTIME DESTINATION bin)

if(CHORUS_TESTS)
  # This folder is added before the top level enables testing; enabling it
  # here too makes ctest see the tests below.
  enable_testing()
  add_executable(chorusrun_probe ${CHORUSRUN_DIR}/chorusrun_probe.cc)
  target_compile_options(chorusrun_probe PRIVATE ${CHORUS_WARNINGS})
  # One ctest per case of chorusrun_test.sh; each takes a few seconds at most.
  foreach(case
      EnvForOneRank EnvForThreeRanks ExtraEnvAndForeignRankVariables PrefixesEveryLine
      InheritsOutputWithoutPrefix FailingRankStopsTheOthers OthersEndingByThemselvesAreNotStopped
      CrashGives128PlusSignal
      StubbornRankIsKilledAfterGrace TimeoutGives124 MissingProgramGives127
      BadOptionsGive2 SigtermIsForwarded SigintIsForwarded RanksDieWithKilledLauncher)
    add_test(NAME chorusrun.${case}
      COMMAND bash ${CHORUSRUN_DIR}/chorusrun_test.sh
              $<TARGET_FILE:chorusrun> $<TARGET_FILE:chorusrun_probe> ${case})
    set_tests_properties(chorusrun.${case} PROPERTIES LABELS "unit" TIMEOUT 60)
  endforeach()
endif()

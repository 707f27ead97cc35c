// perfMain: what every benchmark program runs. Options, the launch
// environment, one thread per -t, and the summary and exit code.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "bench.h"
#include "collective.h"
#include "launch.h"
#include "memory.h"
#include "options.h"
#include "report.h"
#include "thread_ranks.h"

namespace perf {

namespace {

Report* gReport = nullptr;  // global rank 0's, for the die hook

void writeJsonOnDeath(int code) {
  if (gReport != nullptr) gReport->writeJson("the benchmark failed with exit code " + std::to_string(code));
}

// One rank's "#  Rank ..." line, as a fixed-size record for exchange().
struct RankRecord {
  int32_t rank, pid, device;
  char host[64];
  char description[180];
};
static_assert(sizeof(RankRecord) <= 256, "exchange() records are at most 256 bytes");

void reportDevices(ThreadRanks& ranks, const World& world, Report* report) {
  std::vector<std::string> mine;
  const std::string host = shortHostName();
  for (const Slot& s : ranks.slots()) {
    RankRecord r{};
    r.rank = s.rank;
    r.pid = static_cast<int32_t>(getpid());
    r.device = s.memory->onDevice() ? s.memory->device() : -1;
    snprintf(r.host, sizeof r.host, "%s", host.c_str());
    snprintf(r.description, sizeof r.description, "%s", describeDevice(r.device).c_str());
    mine.emplace_back(reinterpret_cast<const char*>(&r), sizeof r);
  }
  std::vector<char> all;
  ranks.exchange(mine, sizeof(RankRecord), &all);
  if (report == nullptr) return;
  std::vector<RankLine> lines;
  for (int k = 0; k < world.nranks(); ++k) {
    RankRecord r;
    memcpy(&r, all.data() + static_cast<size_t>(k) * sizeof r, sizeof r);
    r.host[sizeof r.host - 1] = r.description[sizeof r.description - 1] = '\0';
    lines.push_back({r.rank, r.pid, r.device, r.host, r.description});
  }
  report->devices(lines);
  report->columns();
}

void runThread(const World& world, const Options& options, const Collective& collective,
               int thread, Report* report, std::atomic<bool>* anyWrong) {
  ThreadRanks ranks(world, options, thread);
  ranks.init();
  Report* mine = thread == 0 ? report : nullptr;  // thread 0 of process 0 holds rank 0
  reportDevices(ranks, world, mine);
  Bench bench(ranks, collective, options, world, mine);
  bench.run();
  if (bench.anyWrong()) anyWrong->store(true);
  // Rank 0 prints the summary and writes the JSON file before any rank
  // leaves: a launcher (chorusrun, torchrun, mpirun) that sees a rank exit
  // with an error (#wrong) stops the others, maybe in the middle of that.
  if (mine != nullptr) {
    mine->footer();
    mine->writeJson("");
  }
  ranks.barrier();
}

}  // namespace

int perfMain(int argc, char** argv, const Collective& collective) {
  setvbuf(stdout, nullptr, _IOLBF, 0);  // every line as it is printed
  Options options;
  const int parsed = parseOptions(argc, argv, &options);
  if (parsed >= 0) return parsed;
  const char* program = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];

  World world;
  world.nThreads = options.nThreads;
  world.nGpus = options.nGpus;
  if (!setupProcess(&argc, &argv, &world)) return kExitUsage;
  if (collective.rooted && options.root >= world.nranks()) {
    if (world.proc == 0)
      fprintf(stderr, "%s: root %d is not a rank: there are %d ranks (0..%d)\n", program,
              options.root, world.nranks(), world.nranks() - 1);
    finishProcess(world);
    return kExitUsage;
  }

  // Only rank 0 writes the JSON file (on its host): checked there, before
  // any communicator (die stops the other processes under MPI; launchers
  // stop them when this one fails).
  if (world.proc == 0 && !options.jsonPath.empty()) {
    const std::string problem = jsonPathProblem(options.jsonPath);
    if (!problem.empty()) {
      fprintf(stderr, "%s: -J %s: cannot write the JSON file there (%s)\n", program,
              options.jsonPath.c_str(), problem.c_str());
      die(kExitUsage);
    }
  }

  std::unique_ptr<Report> report;
  if (world.proc == 0) report.reset(new Report(options, world, program, collective));
  gReport = report.get();
  setDieHook(writeJsonOnDeath);
  if (report) report->header();
  if (!shareUniqueId(&world)) die(kExitNccl);

  std::atomic<bool> anyWrong{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < options.nThreads; ++t)
    threads.emplace_back(runThread, std::cref(world), std::cref(options), std::cref(collective), t,
                         report.get(), &anyWrong);
  for (std::thread& t : threads) t.join();

  setDieHook(nullptr);
  finishProcess(world);
  return anyWrong.load() ? kExitWrong : kExitOk;
}

}  // namespace perf

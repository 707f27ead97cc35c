#include "report.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "collective.h"
#include "perf_types.h"

namespace perf {

namespace {

std::string now() {
  char text[64];
  time_t t = time(nullptr);
  struct tm local;
  localtime_r(&t, &local);
  strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
  return text;
}

}  // namespace

std::string jsonPathProblem(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) return "it is not a regular file";
    if (access(path.c_str(), W_OK) != 0) return strerror(errno);
    return "";
  }
  if (errno != ENOENT) return strerror(errno);
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  if (stat(dir.c_str(), &st) != 0) return "directory " + dir + ": " + strerror(errno);
  if (!S_ISDIR(st.st_mode)) return dir + " is not a directory";
  if (access(dir.c_str(), W_OK | X_OK) != 0) return "directory " + dir + ": " + strerror(errno);
  return "";
}

Report::Report(const Options& options, const World& world, const std::string& program,
               const Collective& collective)
    : options_(options), world_(world), program_(program), collective_(collective),
      startTime_(now()) {
  results_.beginArray();
}

// As many decimals as fit in `width` columns: 2 for small values, then 1, then 0.
std::string Report::fit(double value, int width) {
  char text[64];
  const int digits = value < 1 ? 1 : static_cast<int>(std::floor(std::log10(value))) + 1;
  if (digits <= width - 3)
    snprintf(text, sizeof text, "%*.2f", width, value);
  else if (digits <= width - 2)
    snprintf(text, sizeof text, "%*.1f", width, value);
  else if (digits <= width)
    snprintf(text, sizeof text, "%*.0f", width, value);
  else
    snprintf(text, sizeof text, "%*.0e", width, value);
  return text;
}

std::string Report::cell(const Cell& c) {
  char text[128];
  if (!c.ran) {
    snprintf(text, sizeof text, "  %7s  %6s  %6s  %6s", "N/A", "N/A", "N/A", "N/A");
    return text;
  }
  char wrong[32];
  if (c.checked)
    snprintf(wrong, sizeof wrong, "%6g", c.wrong);
  else
    snprintf(wrong, sizeof wrong, "%6s", "N/A");
  snprintf(text, sizeof text, "  %7s  %6s  %6s  %6s", fit(c.timeUs, 7).c_str(),
           fit(c.algBw, 6).c_str(), fit(c.busBw, 6).c_str(), wrong);
  return text;
}

void Report::header() {
  int version = 0;
  ncclGetVersion(&version);
  printf("# Collective test starting: %s\n", program_.c_str());
  printf("# Chorus %d (NCCL API %d.%d.%d): %d ranks = %d process%s x %d thread%s x %d communicator%s"
         " per thread; launched by %s\n",
         version, NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH, world_.nranks(), world_.nProcs,
         world_.nProcs == 1 ? "" : "es", world_.nThreads, world_.nThreads == 1 ? "" : "s",
         world_.nGpus, world_.nGpus == 1 ? "" : "s", world_.launcher.c_str());
  const bool factor = options_.stepFactor > 1;
  printf("# nThread %d nGpus %d minBytes %zu maxBytes %zu step: %zu(%s) warmup iters: %d iters: %d "
         "agg iters: %d validation: %d graph: 0\n",
         options_.nThreads, options_.nGpus, options_.minBytes, options_.maxBytes,
         factor ? options_.stepFactor : options_.stepBytes, factor ? "factor" : "bytes",
         options_.warmupIters, options_.iters, options_.aggIters, options_.checkIters);
  if (options_.blocking)
    printf("# Blocking Enabled: wait for completion and barrier after each collective\n");
  if (options_.timeoutSec > 0)
    printf("# Timeout: %d s per operation (non-blocking communicators, ncclCommAbort on expiry)\n",
           options_.timeoutSec);
  if (options_.localRegister)
    printf("# Local registration: send and receive buffers registered with ncclCommRegister\n");
  printf("#\n# Using devices\n");
  fflush(stdout);
}

void Report::devices(const std::vector<RankLine>& ranks) {
  ranks_ = ranks;
  for (const RankLine& r : ranks) {
    char device[16];
    if (r.device < 0)
      snprintf(device, sizeof device, "host");
    else
      snprintf(device, sizeof device, "%2d", r.device);
    printf("#  Rank %2d Group %2d Pid %6d on %10s device %s %s\n", r.rank, 0, r.pid, r.host.c_str(),
           device, r.description.c_str());
  }
  fflush(stdout);
}

void Report::columns() {
  printf("#\n");
  printf("# %10s  %12s  %8s  %6s  %6s           out-of-place                       in-place\n", "",
         "", "", "", "");
  printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s\n", "size", "count",
         "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw",
         "#wrong");
  printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s\n", "(B)",
         "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "");
  fflush(stdout);
}

void Report::note(const std::string& text) {
  printf("# %s\n", text.c_str());
  fflush(stdout);
}

void Report::jsonCell(const char* key, const Cell& c) {
  if (!c.ran) {
    results_.null(key);
    return;
  }
  results_.beginObject(key).value("time", c.timeUs).value("alg_bw", c.algBw).value("bus_bw", c.busBw);
  if (c.checked)
    results_.value("nwrong", c.wrong);
  else
    results_.null("nwrong");
  results_.endObject();
}

void Report::row(size_t bytes, size_t count, const char* type, const char* op, int root,
                 const Cell& out, const Cell& in) {
  std::lock_guard<std::mutex> guard(mutex_);
  printf("%12zu  %12zu  %8s  %6s  %6d%s%s\n", bytes, count, type, op, root, cell(out).c_str(),
         cell(in).c_str());
  fflush(stdout);
  for (const Cell* c : {&out, &in}) {
    if (!c->ran) continue;
    busBwSum_ += c->busBw;
    ++busBwCount_;
    if (c->checked && c->wrong > 0) ++failedCells_;
  }
  if (options_.jsonPath.empty()) return;  // -N 0 runs forever: keep nothing we will not write
  results_.beginObject()
      .value("size", bytes)
      .value("count", count)
      .value("type", type)
      .value("redop", op)
      .value("root", root);
  jsonCell("out_of_place", out);
  jsonCell("in_place", in);
  results_.endObject();
}

int Report::footer() {
  std::lock_guard<std::mutex> guard(mutex_);
  const double avg = busBwCount_ > 0 ? busBwSum_ / busBwCount_ : 0;
  printf("# Out of bounds values : %d %s\n", failedCells_, failedCells_ ? "FAILED" : "OK");
  printf("# Avg bus bandwidth    : %g\n", avg);
  printf("#\n# Collective test concluded: %s\n#\n", program_.c_str());
  fflush(stdout);
  return failedCells_;
}

void Report::writeJson(const std::string& error) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (options_.jsonPath.empty() || jsonWritten_) return;
  jsonWritten_ = true;
  int version = 0;
  ncclGetVersion(&version);
  JsonWriter j;
  j.beginObject().value("version", 1).value("program", program_).value("collective", collective_.name);
  j.value("nccl_version", version).value("start_time", startTime_).value("end_time", now());
  j.beginArray("args");
  for (const std::string& a : options_.argv) j.value(nullptr, a);
  j.endArray();
  const bool factor = options_.stepFactor > 1;
  j.beginObject("config")
      .value("nthreads", options_.nThreads)
      .value("ngpus", options_.nGpus)
      .value("nprocs", world_.nProcs)
      .value("nranks", world_.nranks())
      .value("launcher", world_.launcher)
      .value("minimum_bytes", options_.minBytes)
      .value("maximum_bytes", options_.maxBytes);
  if (factor)
    j.value("step_factor", options_.stepFactor);
  else
    j.value("step_bytes", options_.stepBytes);
  j.value("warmup_iters", options_.warmupIters)
      .value("iterations", options_.iters)
      .value("aggregated_iterations", options_.aggIters)
      .value("run_cycles", options_.runCycles)
      .value("validation", options_.checkIters)
      .value("graph", 0)
      .boolean("blocking_collectives", options_.blocking)
      .value("average", options_.average)
      .value("timeout", options_.timeoutSec)
      .value("local_register", options_.localRegister ? 1 : 0);
  j.beginArray("devices");
  for (const RankLine& r : ranks_)
    j.beginObject()
        .value("rank", r.rank)
        .value("group", 0)
        .value("pid", r.pid)
        .value("hostname", r.host)
        .value("device", r.device)
        .value("device_info", r.description)
        .endObject();
  j.endArray().endObject();
  j.raw("results", results_.text() + "]");  // results_ is an array still open for rows
  j.beginObject("out_of_bounds").value("count", failedCells_).boolean("okay", failedCells_ == 0).endObject();
  j.beginObject("average_bus_bandwidth")
      .value("bandwidth", busBwCount_ > 0 ? busBwSum_ / busBwCount_ : 0.0)
      .endObject();
  j.beginArray("errors");
  if (!error.empty()) j.value(nullptr, error);
  j.endArray().endObject();
  FILE* f = fopen(options_.jsonPath.c_str(), "w");
  if (f == nullptr) {
    printError("cannot write the JSON file %s: %s", options_.jsonPath.c_str(), strerror(errno));
    return;
  }
  fprintf(f, "%s\n", j.text().c_str());
  fclose(f);
}

}  // namespace perf

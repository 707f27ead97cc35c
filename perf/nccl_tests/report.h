// What the benchmarks print, in nccl-tests' layout, and the same data as a
// JSON file (-J). Only global rank 0 has a Report; rows are printed and
// flushed as each size finishes, so long sweeps show progress.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "json_writer.h"
#include "launch.h"
#include "options.h"

namespace perf {

struct Collective;

// One placement (out of place or in place) of one row.
struct Cell {
  bool ran = false;      // false: skipped (printed N/A)
  bool checked = false;  // false: not checked (#wrong N/A)
  double timeUs = 0, algBw = 0, busBw = 0;
  double wrong = 0;      // wrong elements, summed over ranks
};

// One rank's "#  Rank ..." line.
struct RankLine {
  int rank = 0, pid = 0, device = -1;  // -1: host memory
  std::string host, description;
};

// Why the -J file could not be written (empty when it can): checked before
// the run, which would otherwise end without its results.
std::string jsonPathProblem(const std::string& path);

class Report {
 public:
  Report(const Options& options, const World& world, const std::string& program,
         const Collective& collective);

  void header();
  void devices(const std::vector<RankLine>& ranks);
  void columns();
  void note(const std::string& text);  // printed as "# text"
  void row(size_t bytes, size_t count, const char* type, const char* op, int root, const Cell& out,
           const Cell& in);
  // Prints the summary; returns the number of cells with wrong elements.
  int footer();
  // Writes the JSON file (if -J), with `error` in its error list when not empty.
  void writeJson(const std::string& error);

 private:
  static std::string fit(double value, int width);  // nccl-tests' number widths
  static std::string cell(const Cell& c);
  void jsonCell(const char* key, const Cell& c);

  const Options& options_;
  const World& world_;
  std::string program_;
  const Collective& collective_;
  std::mutex mutex_;  // the die hook may write the JSON file from another thread
  JsonWriter results_;
  std::vector<RankLine> ranks_;
  std::string startTime_;
  int failedCells_ = 0;
  double busBwSum_ = 0;
  int busBwCount_ = 0;
  bool jsonWritten_ = false;
};

}  // namespace perf

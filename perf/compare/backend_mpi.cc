// perf/compare backend for MPI: one source, compiled once with Open MPI's
// mpicxx and once with MPICH's (the compare script does both); launched by
// that implementation's mpirun.
#include <mpi.h>

#include <cstdio>
#include <string>

#include "bench_core.h"

#ifndef COMPARE_MPI_NAME
#error "compile with -DCOMPARE_MPI_NAME=\"openmpi\" or \"mpich\""
#endif

namespace {

class MpiBackend : public compare::Backend {
 public:
  const char* name() const override { return COMPARE_MPI_NAME; }

  std::string version() const override {
    char text[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(text, &len);
    std::string v(text, size_t(len));
    // Keep the first line: MPICH prints its whole configure line after it.
    size_t eol = v.find_first_of("\r\n,");
    if (eol != std::string::npos) v.resize(eol);
    std::string clean;  // one line, single spaces, no quotes: it goes into a CSV-like header
    for (char c : v) {
      if (c == '"') c = '\'';
      if (c == '\t' || c == ' ') {
        if (!clean.empty() && clean.back() != ' ') clean += ' ';
      } else {
        clean += c;
      }
    }
    while (!clean.empty() && clean.back() == ' ') clean.pop_back();
    return clean;
  }

  bool init(int* rank, int* nranks) override {
    if (!check(MPI_Init(nullptr, nullptr), "MPI_Init")) return false;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    return check(MPI_Comm_rank(MPI_COMM_WORLD, rank), "MPI_Comm_rank") &&
           check(MPI_Comm_size(MPI_COMM_WORLD, nranks), "MPI_Comm_size");
  }

  bool run(compare::Op op, const float* send, float* recv, size_t count) override {
    if (count > size_t(INT32_MAX)) {
      fprintf(stderr, "%s: count %zu does not fit an MPI int count\n", name(), count);
      return false;
    }
    int c = int(count);
    switch (op) {
      case compare::Op::AllReduce:
        return check(MPI_Allreduce(send, recv, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
      case compare::Op::AllGather:
        return check(MPI_Allgather(send, c, MPI_FLOAT, recv, c, MPI_FLOAT, MPI_COMM_WORLD), "MPI_Allgather");
      case compare::Op::ReduceScatter:
        return check(MPI_Reduce_scatter_block(send, recv, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
                     "MPI_Reduce_scatter_block");
      case compare::Op::Broadcast:
        return check(MPI_Bcast(recv, c, MPI_FLOAT, 0, MPI_COMM_WORLD), "MPI_Bcast");
    }
    return false;
  }

  bool maxOverRanks(double* value) override {
    return check(MPI_Allreduce(MPI_IN_PLACE, value, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce(max)");
  }

  void finalize() override { MPI_Finalize(); }

 private:
  bool check(int rc, const char* what) const {
    if (rc == MPI_SUCCESS) return true;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    fprintf(stderr, "%s: %s: %.*s\n", name(), what, len, text);
    return false;
  }
};

}  // namespace

int main(int argc, char** argv) {
  MpiBackend backend;
  int rc = compare::benchMain(backend, argc, argv);
  // A rank that failed must not leave its peers waiting inside a collective.
  if (rc == 1) MPI_Abort(MPI_COMM_WORLD, rc);
  return rc;
}

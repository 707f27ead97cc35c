// perf/compare backend for Gloo (Debian's libgloo-dev): ranks meet through a
// gloo::rendezvous::FileStore in the folder named by COMPARE_GLOO_STORE and
// connect a full mesh over gloo's TCP transport on 127.0.0.1. RANK and
// WORLD_SIZE name the rank, as for Chorus.
//
// AllReduce, AllGather and Broadcast use gloo's collective functions (ring
// allreduce, ring allgather, binomial-tree broadcast). Gloo has no
// reduce-scatter function; its ReduceScatterHalvingDoubling algorithm object
// reduces in place in the input and leaves this rank's block at its start,
// so run() copies that block (count floats, 1/nranks of the input) to the
// output, as a caller of Gloo would have to.
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/reduce_scatter.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "bench_core.h"

namespace {

using ReduceFn = void (*)(void*, const void*, const void*, size_t);

int envInt(const char* name) {
  const char* v = getenv(name);
  return v != nullptr ? atoi(v) : -1;
}

class GlooBackend : public compare::Backend {
 public:
  const char* name() const override { return "gloo"; }
  std::string version() const override { return "Gloo " GLOO_DEBIAN_VERSION " (tcp transport)"; }

  bool init(int* rank, int* nranks) override {
    *rank = envInt("RANK");
    *nranks = envInt("WORLD_SIZE");
    const char* dir = getenv("COMPARE_GLOO_STORE");
    if (*rank < 0 || *nranks < 1 || *rank >= *nranks || dir == nullptr) {
      fprintf(stderr, "compare_gloo: set RANK, WORLD_SIZE and COMPARE_GLOO_STORE=<empty folder>\n");
      return false;
    }
    return guard("connect", [&] {
      gloo::transport::tcp::attr attr;
      attr.hostname = "127.0.0.1";
      auto device = gloo::transport::tcp::CreateDevice(attr);
      gloo::rendezvous::FileStore store(dir);
      auto context = std::make_shared<gloo::rendezvous::Context>(*rank, *nranks);
      context->setTimeout(std::chrono::seconds(300));  // a 128 MiB op over TCP on 2 cores is slow
      context->connectFullMesh(store, device);
      context_ = context;
    });
  }

  bool prepare(compare::Op op, const float* send, float*, size_t count) override {
    if (op != compare::Op::ReduceScatter) return true;
    return guard("ReduceScatterHalvingDoubling", [&] {
      // Gloo's algorithm objects take int counts and mutable pointers; it
      // reduces in place, which is why keepsInput() is false for it.
      std::vector<float*> ptrs{const_cast<float*>(send)};
      std::vector<int> recvElems(size_t(context_->size), int(count));
      reduceScatter_ = std::make_unique<gloo::ReduceScatterHalvingDoubling<float>>(
          context_, ptrs, int(count) * context_->size, recvElems);
    });
  }

  void release(compare::Op) override { reduceScatter_.reset(); }
  bool keepsInput(compare::Op op) const override { return op != compare::Op::ReduceScatter; }

  bool run(compare::Op op, const float* send, float* recv, size_t count) override {
    float* in = const_cast<float*>(send);
    switch (op) {
      case compare::Op::AllReduce:
        return guard("allreduce", [&] {
          gloo::AllreduceOptions o(context_);
          o.setInput(in, count);
          o.setOutput(recv, count);
          o.setReduceFunction(static_cast<ReduceFn>(&gloo::sum<float>));
          o.setTag(nextTag());
          gloo::allreduce(o);
        });
      case compare::Op::AllGather:
        return guard("allgather", [&] {
          gloo::AllgatherOptions o(context_);
          o.setInput(in, count);
          o.setOutput(recv, count * size_t(context_->size));
          o.setTag(nextTag());
          gloo::allgather(o);
        });
      case compare::Op::Broadcast:
        return guard("broadcast", [&] {
          gloo::BroadcastOptions o(context_);
          o.setOutput(recv, count);  // no input: the root broadcasts in place
          o.setRoot(0);
          o.setTag(nextTag());
          gloo::broadcast(o);
        });
      case compare::Op::ReduceScatter:
        return guard("reduce-scatter", [&] {
          reduceScatter_->run();
          memcpy(recv, send, count * sizeof(float));
        });
    }
    return false;
  }

  bool maxOverRanks(double* value) override {
    return guard("allreduce(max)", [&] {
      gloo::AllreduceOptions o(context_);
      o.setOutput(value, 1);
      o.setReduceFunction(static_cast<ReduceFn>(&gloo::max<double>));
      o.setTag(nextTag());
      gloo::allreduce(o);
    });
  }

  void finalize() override {
    reduceScatter_.reset();
    context_.reset();
  }

 private:
  // Gloo reports errors by throwing; nothing may cross into the core.
  template <typename F>
  bool guard(const char* what, F&& f) {
    try {
      f();
      return true;
    } catch (const std::exception& e) {
      fprintf(stderr, "compare_gloo: %s: %s\n", what, e.what());
      return false;
    }
  }

  // A distinct tag for every collective, as PyTorch's Gloo process group does.
  uint32_t nextTag() { return tag_++; }

  std::shared_ptr<gloo::Context> context_;
  std::unique_ptr<gloo::ReduceScatterHalvingDoubling<float>> reduceScatter_;
  uint32_t tag_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  GlooBackend backend;
  return compare::benchMain(backend, argc, argv);
}

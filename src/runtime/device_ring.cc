#if defined(CHORUS_HAVE_CUDA)
#include "runtime/device_ring.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "collectives/datatypes.h"
#include "collectives/ring_collective.h"
#include "common/log.h"
#include "common/result.h"
#include "common/settings.h"
#include "runtime/comm.h"
#include "runtime/cuda_check.h"
#include "runtime/device.h"
#include "runtime/device_direct.h"
#include "runtime/protocol_setting.h"

namespace chorus {
namespace {

// Slots per FIFO, as NCCL_STEPS.
constexpr uint32_t kRingSlots = 8;
// 16-byte lines per LL slot: kRingLLDataBytes of data, 8 per line, and the count.
constexpr uint32_t kLLLinesPerSlot = kRingLLDataBytes / 8 + 1;
// Collectives of at most this many bytes per rank use the LL protocol (when
// NCCL_PROTO allows both).
constexpr size_t kLLMaxBytes = 16 * 1024;

// A channel's part of a rank's FIFO memory: the slots of the FIFO from the
// previous rank, their sizes, its tail, then the head of the FIFO to the
// next rank (counters on lines of their own: the two ranks poll them), then
// the LL slots of the FIFO from the previous rank.
struct ChannelLayout {
  size_t slotBytes;
  size_t sizes() const { return kRingSlots * slotBytes; }
  size_t tail() const { return sizes() + 256; }
  size_t head() const { return tail() + 64; }
  size_t ll() const { return head() + 64; }
  size_t bytes() const { return ll() + size_t(kRingSlots) * kLLLinesPerSlot * 16; }
};
static_assert(kRingSlots * sizeof(uint32_t) <= 256, "slot sizes fit their line");

// What every rank must agree on before FIFOs are mapped.
struct RingShape {
  int32_t nChannels;
  uint32_t slotBytes;
  uint8_t ll, simple;  // NCCL_PROTO
  uint8_t pad[2];
};

// Zero-fills the FIFO memory before any peer may see it: a stream of its
// own, since the legacy stream or the device may be held by other
// communicators' kernels.
ncclResult_t zeroFill(void* memory, size_t bytes, int rank) {
  cudaStream_t stream = nullptr;
  CHORUS_CHECK(cudaCheck(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
                         "cudaStreamCreateWithFlags", rank));
  cudaError_t err = cudaMemsetAsync(memory, 0, bytes, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  cudaStreamDestroy(stream);
  return cudaCheck(err, "zero-filling the ring FIFOs", rank);
}

DeviceFifo fifoAt(char* receiverBase, char* senderBase, const ChannelLayout& layout) {
  DeviceFifo fifo{};
  fifo.slots = receiverBase;
  fifo.sizes = reinterpret_cast<uint32_t*>(receiverBase + layout.sizes());
  fifo.tail = reinterpret_cast<uint64_t*>(receiverBase + layout.tail());
  fifo.head = reinterpret_cast<uint64_t*>(senderBase + layout.head());
  fifo.nSlots = kRingSlots;
  fifo.slotBytes = static_cast<uint32_t>(layout.slotBytes);
  fifo.llLines = reinterpret_cast<uint64_t*>(receiverBase + layout.ll());
  fifo.llLinesPerSlot = kLLLinesPerSlot;
  return fifo;
}

}  // namespace

int DeviceRing::channelsFromSettings() {
  return static_cast<int>(
      std::clamp<int64_t>(settingInt("CHORUS_DEVICE_RING"), 0, kRingKernelMaxChannels));
}

ncclResult_t DeviceRing::create(ncclComm* comm, int nChannels, std::unique_ptr<DeviceRing>* out) {
  out->reset();
  std::unique_ptr<DeviceRing> ring(new DeviceRing());
  ring->device_ = comm->cudaDev;
  ring->rank_ = comm->rank;
  ring->nranks_ = comm->nranks;
  ring->nChannels_ = nChannels;
  if (nChannels > 0) ring->protocols_ = protocolsFromSettings();  // unused otherwise
  const int rank = comm->rank, nranks = comm->nranks;
  if (nranks > 1) {
    // Every rank agrees (with nChannels 0 too: a collective each rank takes
    // part in whatever its own setting says).
    // Slots hold whole 16-byte words, so the kernel's copies stay wide.
    const int64_t buffSize = std::max<int64_t>(settingInt("NCCL_BUFFSIZE"), kRingSlots * 1024);
    const ChannelLayout layout{static_cast<size_t>(buffSize / kRingSlots) / 16 * 16};
    std::vector<RingShape> shapes(nranks);
    shapes[rank] = RingShape{nChannels, static_cast<uint32_t>(layout.slotBytes),
                             ring->protocols_.ll, ring->protocols_.simple, {0, 0}};
    CHORUS_CHECK(comm->bootstrap->allGather(shapes.data(), sizeof(RingShape)));
    for (int r = 0; r < nranks; ++r) {
      const ProtocolChoice theirs{shapes[r].ll != 0, shapes[r].simple != 0};
      if (shapes[r].nChannels != nChannels || shapes[r].slotBytes != layout.slotBytes ||
          (nChannels > 0 && !(theirs == ring->protocols_)))
        CHORUS_FAIL(ncclInvalidUsage,
                    "rank %d: rank %d asks for a ring kernel of %d channels with %u-byte slots "
                    "and protocols %s, this rank for %d with %zu and %s: set "
                    "CHORUS_DEVICE_RING, NCCL_BUFFSIZE and NCCL_PROTO alike on every rank",
                    rank, r, shapes[r].nChannels, shapes[r].slotBytes, protocolNames(theirs).c_str(),
                    nChannels, layout.slotBytes, protocolNames(ring->protocols_).c_str());
    }
    if (nChannels == 0) return ncclSuccess;
    const size_t bytes = layout.bytes() * static_cast<size_t>(nChannels);
    ring->release_ = AllocationRelease::of(comm, SharedAllocation::RingFifos);
    CHORUS_CHECK(cudaCheck(cudaMalloc(&ring->own_, bytes), "cudaMalloc of the ring FIFOs", rank));
    CHORUS_CHECK(zeroFill(ring->own_, bytes, rank));
    std::vector<char*> bases;
    CHORUS_CHECK(mapPeerAllocations(comm, ring->own_, &bases, &ring->opened_));
    char* const mine = bases[rank];
    char* const next = bases[(rank + 1) % nranks];
    char* const prev = bases[(rank + nranks - 1) % nranks];
    for (int c = 0; c < nChannels; ++c) {
      const size_t at = layout.bytes() * static_cast<size_t>(c);
      ring->links_[c].toNext = fifoAt(next + at, mine + at, layout);
      ring->links_[c].fromPrev = fifoAt(mine + at, prev + at, layout);
    }
    INFO(kLogInit, "rank %d: ring kernel, %d channels, %u slots of %zu bytes per FIFO", rank,
         nChannels, kRingSlots, layout.slotBytes);
  }
  if (nChannels > 0) *out = std::move(ring);
  return ncclSuccess;
}

DeviceRing::~DeviceRing() {
  // Errors are ignored: this runs while a communicator is torn down, and
  // nothing is left to report them to.
  DeviceGuard onDevice(device_);
  releasePeerAllocations(own_, opened_, release_, "this rank's ring FIFOs");
  cudaGetLastError();
}

bool DeviceRing::takes(const std::vector<Op>& ops) {
  for (const Op& op : ops)
    if (isPointToPoint(op)) return false;
  return !ops.empty();
}

ncclResult_t DeviceRing::launch(const std::vector<Op>& ops, cudaStream_t stream,
                                const uint32_t* abortFlag, uint32_t* status) const {
  RingKernelArgs args{};
  std::copy(links_, links_ + nChannels_, args.channels);
  args.rank = rank_;
  args.nranks = nranks_;
  args.nChannels = nranks_ > 1 ? nChannels_ : 1;
  args.abortFlag = abortFlag;
  args.status = status;
  // One launch per run of collectives of the same shape (kind, count,
  // type, root): each block then touches the same elements in all of them,
  // so a collective that reads what the one before wrote (b = AllReduce(a),
  // c = AllReduce(b)) finds it written. Collectives of different shapes
  // slice differently over the blocks: separate launches order them.
  auto sameShape = [](const Op& a, const Op& b) {
    return a.kind == b.kind && a.count == b.count && a.type == b.type && a.root == b.root;
  };
  for (size_t first = 0, n = 0; first < ops.size(); first += n) {
    n = 1;
    while (first + n < ops.size() && n < kRingKernelMaxWorks && sameShape(ops[first], ops[first + n]))
      ++n;
    args.nWorks = static_cast<int32_t>(n);
    for (size_t i = 0; i < n; ++i) {
      const Op& op = ops[first + i];
      RingWork& work = args.works[i];
      work.coll = static_cast<uint32_t>(op.kind);  // OpKind and RingCollective agree
      // Small collectives on LL: one line transfer per 8 bytes instead of a
      // fence, a counter and a barrier per slot. Every rank decides alike
      // (the ranks checked that they allow the same protocols).
      const bool ll = protocols_.useLL(op.count * elementSize(op.type), kLLMaxBytes);
      work.protocol = static_cast<uint32_t>(ll ? RingProtocol::LL : RingProtocol::Simple);
      work.root = op.root;
      work.op = op.redop;
      work.input = op.sendbuff;
      work.output = op.recvbuff;
      work.count = op.count;
      work.scalarSource = op.scalarSource;
    }
    CHORUS_CHECK(launchRingKernel(args, stream));
  }
  return ncclSuccess;
}

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA

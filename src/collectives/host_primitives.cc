#include "collectives/host_primitives.h"

#include <algorithm>
#include <cstring>

#include "collectives/datatypes.h"
#include "common/result.h"

namespace chorus {

HostPrimitives::HostPrimitives(FifoSender* toNext, FifoReceiver* fromPrev, const void* input,
                               void* output, const RedOpArgs& op, int rank, int next, int prev)
    : toNext_(toNext),
      fromPrev_(fromPrev),
      input_(static_cast<const char*>(input)),
      output_(static_cast<char*>(output)),
      op_(op),
      elemSize_(elementSize(op.type)),
      rank_(rank),
      next_(next),
      prev_(prev) {
  size_t slotBytes = toNext ? toNext->slotSize() : fromPrev ? fromPrev->slotSize() : 0;
  slotElems_ = slotBytes / elemSize_;
}

ncclResult_t HostPrimitives::checkPieces(size_t n) const {
  if (n > 0 && slotElems_ == 0)  // no connection, or a slot smaller than one element
    CHORUS_FAIL(ncclInternalError, "rank %d: a primitive needs a connection this channel lacks",
                rank_);
  return ncclSuccess;
}

ncclResult_t HostPrimitives::receive(size_t bytes, const char** data) {
  uint32_t got = 0;
  CHORUS_CHECK(fromPrev_->wait(data, &got));
  if (got != bytes)
    CHORUS_FAIL(ncclInvalidUsage,
                "rank %d received %u bytes from rank %d where it expected %zu: do all ranks call "
                "the same collectives in the same order, with the same count, type and root?",
                rank_, got, prev_, bytes);
  return ncclSuccess;
}

// Each primitive walks its n elements in slot-sized pieces (i: first element
// of the piece, m: its length); both ends of a connection cut the same
// pieces, since they agree on n and the slot size.
ncclResult_t HostPrimitives::send(size_t src, size_t n) {
  CHORUS_CHECK(checkPieces(n));
  for (size_t i = 0, m; i < n; i += m) {
    m = std::min(slotElems_, n - i);
    char* slot;
    CHORUS_CHECK(toNext_->acquire(&slot));
    reduceCopy(op_, nullptr, in(src + i), true, slot, false, m);
    toNext_->publish(static_cast<uint32_t>(m * elemSize_));
  }
  return ncclSuccess;
}

ncclResult_t HostPrimitives::recv(size_t dst, size_t n) {
  CHORUS_CHECK(checkPieces(n));
  for (size_t i = 0, m; i < n; i += m) {
    m = std::min(slotElems_, n - i);
    const char* data;
    CHORUS_CHECK(receive(m * elemSize_, &data));
    memcpy(out(dst + i), data, m * elemSize_);
    fromPrev_->release();
  }
  return ncclSuccess;
}

ncclResult_t HostPrimitives::recvReduceSend(size_t src, size_t n) {
  CHORUS_CHECK(checkPieces(n));
  for (size_t i = 0, m; i < n; i += m) {
    m = std::min(slotElems_, n - i);
    const char* data;
    char* slot;
    CHORUS_CHECK(receive(m * elemSize_, &data));
    CHORUS_CHECK(toNext_->acquire(&slot));
    reduceCopy(op_, data, in(src + i), true, slot, false, m);
    toNext_->publish(static_cast<uint32_t>(m * elemSize_));
    fromPrev_->release();
  }
  return ncclSuccess;
}

ncclResult_t HostPrimitives::recvReduceCopy(size_t src, size_t dst, size_t n) {
  CHORUS_CHECK(checkPieces(n));
  for (size_t i = 0, m; i < n; i += m) {
    m = std::min(slotElems_, n - i);
    const char* data;
    CHORUS_CHECK(receive(m * elemSize_, &data));
    reduceCopy(op_, data, in(src + i), true, out(dst + i), true, m);
    fromPrev_->release();
  }
  return ncclSuccess;
}

ncclResult_t HostPrimitives::recvReduceCopySend(size_t src, size_t dst, size_t n) {
  CHORUS_CHECK(checkPieces(n));
  for (size_t i = 0, m; i < n; i += m) {
    m = std::min(slotElems_, n - i);
    const char* data;
    char* slot;
    CHORUS_CHECK(receive(m * elemSize_, &data));
    CHORUS_CHECK(toNext_->acquire(&slot));
    // Reduce once into the outgoing slot, then copy the finished values out.
    reduceCopy(op_, data, in(src + i), true, slot, true, m);
    memcpy(out(dst + i), slot, m * elemSize_);
    toNext_->publish(static_cast<uint32_t>(m * elemSize_));
    fromPrev_->release();
  }
  return ncclSuccess;
}

ncclResult_t HostPrimitives::recvCopySend(size_t dst, size_t n) {
  CHORUS_CHECK(checkPieces(n));
  for (size_t i = 0, m; i < n; i += m) {
    m = std::min(slotElems_, n - i);
    const char* data;
    char* slot;
    CHORUS_CHECK(receive(m * elemSize_, &data));
    CHORUS_CHECK(toNext_->acquire(&slot));
    memcpy(slot, data, m * elemSize_);
    toNext_->publish(static_cast<uint32_t>(m * elemSize_));
    memcpy(out(dst + i), data, m * elemSize_);
    fromPrev_->release();
  }
  return ncclSuccess;
}

ncclResult_t HostPrimitives::copySend(size_t src, size_t dst, size_t n) {
  CHORUS_CHECK(checkPieces(n));
  for (size_t i = 0, m; i < n; i += m) {
    m = std::min(slotElems_, n - i);
    char* slot;
    CHORUS_CHECK(toNext_->acquire(&slot));
    memcpy(slot, in(src + i), m * elemSize_);
    toNext_->publish(static_cast<uint32_t>(m * elemSize_));
    if (in(src + i) != out(dst + i)) memcpy(out(dst + i), in(src + i), m * elemSize_);
  }
  return ncclSuccess;
}

ncclResult_t HostPrimitives::copy(size_t src, size_t dst, size_t n) {
  if (n > 0) reduceCopy(op_, nullptr, in(src), true, out(dst), true, n);
  return ncclSuccess;
}

}  // namespace chorus

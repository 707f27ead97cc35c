// ncclCommSplit: ranks of the parent that pass the same color form a new
// communicator, ordered by key and then by parent rank.
//
// Two allgathers over the parent's bootstrap do it: the first shares every
// rank's (color, key); the lowest new rank of each color then starts a fresh
// root, and the second shares those roots' ids. Each rank then joins its
// color's communicator like any other init.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "bootstrap/root.h"
#include "common/result.h"
#include "runtime/comm.h"
#include "runtime/group.h"
#include "runtime/init.h"

namespace chorus {
namespace {

struct SplitEntry {
  int32_t color;
  int32_t key;
  int32_t parentRank;
};

// The exchanges over the parent's bootstrap: this rank's color's members,
// in their new order, and every color's root id (by parent rank).
ncclResult_t agreeOnSplit(ncclComm* parent, int color, int key, std::vector<SplitEntry>* members,
                          std::vector<ncclUniqueId>* ids) {
  Bootstrap& bootstrap = *parent->bootstrap;
  const int n = parent->nranks;
  std::vector<SplitEntry> entries(n);
  entries[parent->rank] = SplitEntry{color, key, parent->rank};
  CHORUS_CHECK(bootstrap.allGather(entries.data(), sizeof(SplitEntry)));

  for (const SplitEntry& e : entries)
    if (e.color == color && color != NCCL_SPLIT_NOCOLOR) members->push_back(e);
  std::stable_sort(members->begin(), members->end(), [](const SplitEntry& a, const SplitEntry& b) {
    return a.key != b.key ? a.key < b.key : a.parentRank < b.parentRank;
  });

  // The first member of each color makes the root; everyone shares ids.
  ids->resize(n);
  memset(ids->data(), 0, ids->size() * sizeof(ncclUniqueId));
  const bool leader = !members->empty() && (*members)[0].parentRank == parent->rank;
  BootstrapId root{};
  if (leader) {
    CHORUS_CHECK(createRoot(bootstrap.listenAddress(), &root));
    encodeId(root, &(*ids)[parent->rank]);
  }
  const ncclResult_t shared = bootstrap.allGather(ids->data(), sizeof(ncclUniqueId));
  // No member will come to the root made for them: it would wait forever.
  if (shared != ncclSuccess && leader)
    stopLocalRoot(root.magic, "the split that made this root failed: " + lastError());
  return shared;
}

ncclResult_t splitBody(ncclComm* parent, int color, int key, ncclComm* child) {
  std::vector<SplitEntry> members;
  std::vector<ncclUniqueId> ids;
  const ncclResult_t agreed = agreeOnSplit(parent, color, key, &members, &ids);
  if (agreed != ncclSuccess) {
    // A rank left the parent's bootstrap exchanges early (or never came):
    // the ranks no longer agree where they are in them, and a later split
    // would pair the wrong messages. The parent has failed.
    const std::string cause = lastError();
    reportError(__FILE__, __LINE__, "rank %d: ncclCommSplit: the parent's ranks did not all take "
                "part in the split (does every rank call ncclCommSplit on this communicator, in "
                "the same order?); the parent is unusable from here on: %s",
                parent->rank, cause.c_str());
    return recordCommFailure(parent, agreed);
  }
  if (child == nullptr) return ncclSuccess;  // NCCL_SPLIT_NOCOLOR

  int myRank = 0;
  while (members[myRank].parentRank != parent->rank) ++myRank;
  child->rank = myRank;
  child->nranks = static_cast<int>(members.size());
  InitRequest request;
  request.roots.resize(1);
  CHORUS_CHECK(decodeId(ids[members[0].parentRank], &request.roots[0]));
  // The child comes up on this thread: runCommJob already chose which.
  return bringUpComm(child, request);
}

}  // namespace

ncclResult_t commSplit(ncclComm* parent, int color, int key, ncclComm_t* out,
                       const ncclConfig_t* config) {
  if (color < 0 && color != NCCL_SPLIT_NOCOLOR)
    CHORUS_FAIL(ncclInvalidArgument, "ncclCommSplit: color %d must be >= 0 or NCCL_SPLIT_NOCOLOR",
                color);
  *out = nullptr;
  ncclComm* child = nullptr;
  if (color != NCCL_SPLIT_NOCOLOR) {
    CommConfig childConfig = parent->config;  // inherited when config is NULL
    if (config != nullptr) CHORUS_CHECK(parseConfig(config, &childConfig));
    CHORUS_CHECK(newCommWithConfig(childConfig, &child));
    child->cudaDev = parent->cudaDev;  // the parent's device, whichever is current here
    *out = child;
  }
  ncclResult_t result =
      runCommJob(child, [parent, color, key, child] { return splitBody(parent, color, key, child); },
                 parent);
  if (result != ncclSuccess && result != ncclInProgress && child != nullptr &&
      child->config.blocking && !inGroup()) {
    freeComm(child);
    *out = nullptr;
  }
  return result;
}

}  // namespace chorus

// Host memory that ncclMemAlloc hands out when communicators live on the
// host, and how peers in other processes of this host reach it.
//
// A block is a memfd of its own, mapped shared: another process of the same
// user may open the owner's descriptor through /proc/<pid>/fd/<fd> and map
// the same pages, so a registered buffer inside a block can be lent to
// peers (runtime/lent_registrations.h), which then read and write it in
// place instead of through a staged copy or the kernel. A peer checks the
// file's device and inode after opening it, so a descriptor number that the
// owner has since closed and reused, or a pid of another pid namespace,
// opens nothing wrong. Where memfd_create fails (an old kernel, a seccomp
// profile that forbids it), or blocks already hold a quarter of the
// process's descriptor limit, a block is private anonymous memory, which
// works the same but is never lent. A forked child does not inherit shared
// blocks (MADV_DONTFORK, as verbs does with registered memory): it would
// otherwise write into its parent's memory. A block larger than the
// machine's memory and swap is refused at once.
#pragma once

#include <cstddef>
#include <memory>

namespace chorus {

class ExportedMemory;

// A page-aligned block of at least `bytes` (> 0); null when out of memory.
void* allocateHostBlock(size_t bytes);
// Unmaps a block from allocateHostBlock; false when `block` is not one.
bool freeHostBlock(void* block);

// Exports buffers inside shared blocks; opens peers' blocks.
std::unique_ptr<ExportedMemory> hostBlockMemory();

}  // namespace chorus

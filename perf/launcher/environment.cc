#include "environment.h"

#include <cstring>

namespace chorus {
namespace launcher {
namespace {

const char* const kLauncherVariables[] = {
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
    "GROUP_RANK",
};

// Who-am-I variables of other launchers. Inherited from an outer srun or
// mpirun they would describe chorusrun's own place in that job, the same for
// every rank, so they are dropped.
const char* const kForeignRankVariables[] = {
    "SLURM_PROCID",          "SLURM_LOCALID",          "SLURM_NODEID",
    "SLURM_NTASKS",          "SLURM_NPROCS",           "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_SIZE",  "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
    "PMI_RANK",              "PMI_SIZE",               "PMIX_RANK",
};

// Where ranks meet is MASTER_ADDR:MASTER_PORT. A program that prefers
// NCCL_COMM_ID (the perf programs derive it from MASTER_* only when it is
// unset) would follow a stale exported one instead; -x can still set it.
const char* const kReplacedByMaster[] = {"NCCL_COMM_ID"};

std::string nameOf(const std::string& entry) { return entry.substr(0, entry.find('=')); }

template <size_t N>
bool contains(const char* const (&names)[N], const std::string& name) {
  for (const char* candidate : names)
    if (name == candidate) return true;
  return false;
}

void put(std::vector<std::string>* env, const std::string& name, const std::string& value) {
  for (std::string& entry : *env) {
    if (nameOf(entry) == name) {
      entry = name + "=" + value;
      return;
    }
  }
  env->push_back(name + "=" + value);
}

}  // namespace

bool isLauncherVariable(const std::string& name) { return contains(kLauncherVariables, name); }

std::vector<std::string> sharedEnvironment(
    char** inherited, const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (char** entry = inherited; entry != nullptr && *entry != nullptr; ++entry) {
    if (strchr(*entry, '=') == nullptr) continue;  // not NAME=VALUE: nothing to pass on
    std::string name = nameOf(*entry);
    if (isLauncherVariable(name) || contains(kForeignRankVariables, name) ||
        contains(kReplacedByMaster, name))
      continue;
    env.emplace_back(*entry);
  }
  for (const auto& [name, value] : extra) put(&env, name, value);
  return env;
}

std::vector<std::string> rankEnvironment(const std::vector<std::string>& shared, int rank,
                                         int ranks, const std::string& addr, int port) {
  std::vector<std::string> env = shared;
  // One machine, one group: local and global numbering coincide.
  env.push_back("RANK=" + std::to_string(rank));
  env.push_back("WORLD_SIZE=" + std::to_string(ranks));
  env.push_back("LOCAL_RANK=" + std::to_string(rank));
  env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(ranks));
  env.push_back("GROUP_RANK=0");
  env.push_back("MASTER_ADDR=" + addr);
  env.push_back("MASTER_PORT=" + std::to_string(port));
  return env;
}

}  // namespace launcher
}  // namespace chorus

// The environment each rank starts with: chorusrun's own, minus the rank
// variables of other launchers, plus -x, plus the torchrun-style variables
// that tell a rank who it is and where rank 0 serves the root.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace chorus {
namespace launcher {

// RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// GROUP_RANK: set by chorusrun for every rank, never inherited or taken from -x.
bool isLauncherVariable(const std::string& name);

// "NAME=VALUE" strings shared by every rank: `inherited` (an environ-style,
// null-terminated array) without the launcher variables and without the rank
// variables of srun/mpirun (SLURM_PROCID, OMPI_COMM_WORLD_RANK, ...), which a
// program could otherwise read instead of RANK when chorusrun itself runs
// inside such a job, and without NCCL_COMM_ID, which would override
// MASTER_ADDR:MASTER_PORT; then `extra` (-x), later entries replacing earlier
// ones.
std::vector<std::string> sharedEnvironment(
    char** inherited, const std::vector<std::pair<std::string, std::string>>& extra);

// `shared` plus the launcher variables for one rank.
std::vector<std::string> rankEnvironment(const std::vector<std::string>& shared, int rank,
                                         int ranks, const std::string& addr, int port);

}  // namespace launcher
}  // namespace chorus

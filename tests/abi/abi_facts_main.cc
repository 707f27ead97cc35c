// Compares the ABI facts of Chorus's nccl.h (built with and without CUDA
// headers) with those of NVIDIA's nccl.h: every function type, enumerator,
// macro, type size, struct layout and initializer value must be the same.
#include <cstdio>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

using Facts = std::vector<std::pair<std::string, std::string>>;
Facts abiFactsNvidia();
Facts abiFactsOursWithCuda();
Facts abiFactsOursWithoutCuda();

namespace {

bool isDeviceFact(const std::string& key) { return key.rfind("device ", 0) == 0; }

int compare(const char* label, const Facts& reference, const Facts& ours) {
  std::map<std::string, std::string> want(reference.begin(), reference.end());
  std::map<std::string, std::string> got(ours.begin(), ours.end());
  // An NVIDIA install without the device-API headers (before 2.28) gives
  // nothing to compare the device facts with.
  bool nvidiaHasDeviceApi = false;
  for (const auto& entry : want) nvidiaHasDeviceApi |= isDeviceFact(entry.first);
  if (!nvidiaHasDeviceApi) {
    for (auto it = got.begin(); it != got.end();) it = isDeviceFact(it->first) ? got.erase(it) : std::next(it);
  }
  int mismatches = 0;
  for (const auto& [key, value] : want) {
    auto it = got.find(key);
    if (it == got.end()) {
      std::printf("FAIL [%s] %s: missing (NVIDIA: %s)\n", label, key.c_str(), value.c_str());
      ++mismatches;
    } else if (it->second != value) {
      std::printf("FAIL [%s] %s: %s (NVIDIA: %s)\n", label, key.c_str(), it->second.c_str(),
                  value.c_str());
      ++mismatches;
    }
  }
  for (const auto& [key, value] : got) {
    if (want.count(key) == 0) {
      std::printf("FAIL [%s] %s: not in NVIDIA's header (ours: %s)\n", label, key.c_str(),
                  value.c_str());
      ++mismatches;
    }
  }
  std::printf("[%s] %zu facts compared, %d differ\n", label, want.size(), mismatches);
  return mismatches;
}

}  // namespace

int main() {
  const Facts nvidia = abiFactsNvidia();
  int failures = compare("with CUDA headers", nvidia, abiFactsOursWithCuda());
  failures += compare("without CUDA headers", nvidia, abiFactsOursWithoutCuda());
  return failures == 0 ? 0 : 1;
}

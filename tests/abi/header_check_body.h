/*
 * Body of the header checks: compiled as C and as C++, with and without CUDA
 * headers (see CMakeLists.txt). It must compile warning-free under
 * -Wall -Wextra -pedantic -Werror where no CUDA header is involved.
 *
 * CHORUS_EXPECT_CUDA_HEADERS, when defined, is what CHORUS_NCCL_CUDA_HEADERS
 * must be: 1 where the CUDA include path is given, 0 under
 * CHORUS_NO_CUDA_HEADERS.
 */
#include "nccl.h"

#include "abi_layout.h"
#include "api_functions.h"

#if !defined(CHORUS_NCCL_CUDA_HEADERS)
#error "CHORUS_NCCL_CUDA_HEADERS must always be defined (0 or 1)"
#endif
#if defined(CHORUS_EXPECT_CUDA_HEADERS) && CHORUS_NCCL_CUDA_HEADERS != CHORUS_EXPECT_CUDA_HEADERS
#error "CHORUS_NCCL_CUDA_HEADERS is not what this build expects"
#endif
#if defined(CHORUS_NO_CUDA_HEADERS) && defined(__CUDA_RUNTIME_H__)
#error "CHORUS_NO_CUDA_HEADERS did not keep cuda_runtime.h out"
#endif

int chorusHeaderCheck(void);

/* Every function is declared (with a prototype, under -Wstrict-prototypes),
 * and the initializers compile in this language. */
int chorusHeaderCheck(void) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  ncclSimInfo_t simInfo = NCCL_SIM_INFO_INITIALIZER;
  ncclUniqueId id;
  ncclComm_t comm = NCCL_COMM_NULL;
  cudaStream_t stream = 0;
  ncclWindow_t window = 0;
#define CHORUS_X(name) (void)&name; (void)&p##name;
  CHORUS_ABI_FUNCTIONS(CHORUS_X)
#undef CHORUS_X
  (void)id;
  (void)comm;
  (void)stream;
  (void)window;
  return config.blocking == NCCL_CONFIG_UNDEF_INT && simInfo.estimatedTime < 0.0f;
}

/*
 * A C program built against NVIDIA's nccl.h and run on Chorus's
 * libnccl.so.2 on a GPU: two ranks on GPU 0 (NCCL itself refuses two ranks
 * on one GPU), driven from one thread, AllReduce of device buffers on two
 * streams, results checked. Exits 77 (skipped) when no CUDA device is usable.
 */
#include CHORUS_NVIDIA_NCCL_H /* NVIDIA's header by absolute path (set by CMake) */

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

#define COUNT (1 << 20)
#define RANKS 2

static int check(int ok, const char* what) {
  if (!ok) fprintf(stderr, "nvidia_header_two_ranks_gpu: %s\n", what);
  return ok;
}

int main(void) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    printf("nvidia_header_two_ranks_gpu: no CUDA device, skipped\n");
    return 77;
  }
  const int devlist[RANKS] = {0, 0};
  ncclComm_t comms[RANKS];
  cudaStream_t streams[RANKS];
  float* buffers[RANKS];
  static float host[COUNT];
  if (!check(ncclCommInitAll(comms, RANKS, devlist) == ncclSuccess, ncclGetLastError(NULL)))
    return 1;
  for (int r = 0; r < RANKS; ++r) {
    for (int i = 0; i < COUNT; ++i) host[i] = (float)(r + 1 + i % 7);
    if (!check(cudaStreamCreate(&streams[r]) == cudaSuccess, "cudaStreamCreate") ||
        !check(cudaMalloc((void**)&buffers[r], sizeof(host)) == cudaSuccess, "cudaMalloc") ||
        !check(cudaMemcpy(buffers[r], host, sizeof(host), cudaMemcpyHostToDevice) == cudaSuccess,
               "cudaMemcpy"))
      return 1;
  }
  ncclGroupStart();
  for (int r = 0; r < RANKS; ++r)
    ncclAllReduce(buffers[r], buffers[r], COUNT, ncclFloat, ncclSum, comms[r], streams[r]);
  if (!check(ncclGroupEnd() == ncclSuccess, ncclGetLastError(NULL))) return 1;
  int wrong = 0;
  for (int r = 0; r < RANKS; ++r) {
    if (!check(cudaStreamSynchronize(streams[r]) == cudaSuccess, "cudaStreamSynchronize") ||
        !check(cudaMemcpy(host, buffers[r], sizeof(host), cudaMemcpyDeviceToHost) == cudaSuccess,
               "cudaMemcpy back"))
      return 1;
    for (int i = 0; i < COUNT; ++i)
      if (host[i] != (float)(3 + 2 * (i % 7))) ++wrong;
  }
  for (int r = 0; r < RANKS; ++r) {
    ncclCommDestroy(comms[r]);
    cudaFree(buffers[r]);
    cudaStreamDestroy(streams[r]);
  }
  printf("nvidia_header_two_ranks_gpu: %d wrong elements\n", wrong);
  return wrong == 0 ? 0 : 1;
}

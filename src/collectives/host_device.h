// Markers for code that compiles both as host C++ and as CUDA device code.
//
// The algorithms, datatypes and reduction operators are written once and used
// by the host executor (g++) and by CUDA kernels (nvcc). Under nvcc the
// functions are __host__ __device__ and force-inlined (a device function call
// in an inner loop costs registers and a stack frame); in a plain C++
// translation unit the markers reduce to `inline`.
#pragma once

#if defined(__CUDACC__)
#define CHORUS_HOST_DEVICE __host__ __device__
#define CHORUS_INLINE __forceinline__
// Before a CHORUS_HOST_DEVICE template that calls a callable it is given
// (dispatchType, dispatchRedOp): instantiating it with a host-only callable
// is then not a warning, as long as it is only called on the host.
#define CHORUS_HD_TEMPLATE _Pragma("nv_exec_check_disable")
#else
#define CHORUS_HOST_DEVICE
#define CHORUS_INLINE inline
#define CHORUS_HD_TEMPLATE
#endif

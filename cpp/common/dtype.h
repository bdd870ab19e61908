// The element types the float kernels are built for, shared by every family and the bindings.
#pragma once

namespace numkern {

enum class Dtype : int { f32 = 0, f64 = 1 };

}  // namespace numkern

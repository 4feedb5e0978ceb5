#pragma once

// What torchvision 0.14's augmentation policies (autoaugment.py: AutoAugment, RandAugment,
// TrivialAugmentWide) share: the operations of _apply_op on PIL images, through the engine's
// affine, rotate and colour kernels, and the magnitude bins of _augmentation_space, computed in
// float32 as torch.linspace computes them.

#include "transforms/transformop.h"

#include <QString>

#include <vector>

namespace ifs {
enum class TorchCpuCapability;
}

namespace ifs::ops::augment {

enum class Op {
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
    Invert,
};

/// The op's name as autoaugment.py spells it ("ShearX").
QString opName(Op op);

/// One entry of _augmentation_space: the magnitudes (empty for torch.tensor(0.0), an op without
/// magnitude) and whether a sign is drawn.
struct Space
{
    Op op = Op::Identity;
    std::vector<double> magnitudes;
    bool isSigned = false;
};

/// torch.linspace(start, end, steps) (float32) as torch 1.13's CPU kernel computes it: scalar
/// elements from both ends (fused multiply-add where the kernels are AVX2), the first multiples
/// of 16 elements in vectors of 8 from a base.
std::vector<double> linspace(double start, double end, int steps);

/// `top - (torch.arange(steps) / ((steps - 1) / divisor)).round().int()`: Posterize's bits.
std::vector<double> posterizeBins(int top, int steps, double divisor);

/// _apply_op(img, op, magnitude, interpolation, fill) on the run's PIL image; returns what it
/// did for the trace ("Solarize(threshold=170)").
QString applyOp(RunState &run, Op op, double magnitude, pil::Filter filter,
                const std::vector<double> &fill);

/// The policies' interpolation argument: NEAREST, BILINEAR or BICUBIC (PIL's transform refuses
/// the others).
pil::Filter policyInterpolation(const V &v);
/// The policies' fill: None (0), a number or one per channel.
std::vector<double> policyFill(const V &v);

} // namespace ifs::ops::augment

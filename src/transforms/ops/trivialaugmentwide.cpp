// TrivialAugmentWide(num_magnitude_bins=31, interpolation=NEAREST, fill=None): one op of 14,
// drawn with a random magnitude bin and sign.
#include "transforms/ops/augmentops.h"
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"

namespace ifs::ops {

namespace {

using augment::Op;

class TrivialAugmentWide final : public PreparedOp
{
public:
    std::vector<augment::Space> space;
    pil::Filter filter = pil::Filter::Nearest;
    std::vector<double> fill{0.0};

    void apply(RunState &run) const override
    {
        // forward(): the op, then a magnitude bin if it has magnitudes, then a sign if signed.
        const augment::Space &s = space[size_t(run.rng.randint(0, int64_t(space.size())))];
        double magnitude = 0.0;
        if (!s.magnitudes.empty())
            magnitude = s.magnitudes[size_t(run.rng.randint(0, int64_t(s.magnitudes.size())))];
        if (s.isSigned && run.rng.randint(0, 2))
            magnitude *= -1.0;
        run.trace->summary
            = QStringLiteral("→ ") + augment::applyOp(run, s.op, magnitude, filter, fill);
        run.trace->applied = s.op != Op::Identity;
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<TrivialAugmentWide>();
    const int bins = integer(a[u"num_magnitude_bins"], QStringLiteral("num_magnitude_bins"));
    if (bins < 2)
        fail(QStringLiteral("num_magnitude_bins must be at least 2, not %1").arg(bins));
    op->filter = augment::policyInterpolation(a[u"interpolation"]);
    op->fill = augment::policyFill(a[u"fill"]);
    using augment::linspace;
    op->space = {
        {Op::Identity, {}, false},
        {Op::ShearX, linspace(0.0, 0.99, bins), true},
        {Op::ShearY, linspace(0.0, 0.99, bins), true},
        {Op::TranslateX, linspace(0.0, 32.0, bins), true},
        {Op::TranslateY, linspace(0.0, 32.0, bins), true},
        {Op::Rotate, linspace(0.0, 135.0, bins), true},
        {Op::Brightness, linspace(0.0, 0.99, bins), true},
        {Op::Color, linspace(0.0, 0.99, bins), true},
        {Op::Contrast, linspace(0.0, 0.99, bins), true},
        {Op::Sharpness, linspace(0.0, 0.99, bins), true},
        {Op::Posterize, augment::posterizeBins(8, bins, 6.0), false},
        {Op::Solarize, linspace(255.0, 0.0, bins), false},
        {Op::AutoContrast, {}, false},
        {Op::Equalize, {}, false},
    };
    return op;
}

} // namespace

const TransformDefinition &trivialAugmentWide()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("TrivialAugmentWide"),
        .parameters
        = {opt(QStringLiteral("num_magnitude_bins"), V::integer(31), integerHint(2, 1000)),
           opt(QStringLiteral("interpolation"), V::interpolation(QStringLiteral("NEAREST"))),
           opt(QStringLiteral("fill"), V::none())},
        .description
        = QStringLiteral("One random augmentation of 14 at a random strength (TrivialAugment)"),
        .category = TransformCategory::Policies,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
    };
    return definition;
}

} // namespace ifs::ops

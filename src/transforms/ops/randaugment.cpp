// RandAugment(num_ops=2, magnitude=9, num_magnitude_bins=31, interpolation=NEAREST, fill=None):
// num_ops random ops of 14 at one magnitude, each with a random sign.
#include "transforms/ops/augmentops.h"
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"

namespace ifs::ops {

namespace {

using augment::Op;

class RandAugment final : public PreparedOp
{
public:
    int numOps = 2;
    int magnitude = 9;
    int bins = 31;
    pil::Filter filter = pil::Filter::Nearest;
    std::vector<double> fill{0.0};

    /// _augmentation_space(num_bins, (height, width)): Translate depends on the image's size.
    std::vector<augment::Space> space(QSize size) const
    {
        using augment::linspace;
        return {
            {Op::Identity, {}, false},
            {Op::ShearX, linspace(0.0, 0.3, bins), true},
            {Op::ShearY, linspace(0.0, 0.3, bins), true},
            {Op::TranslateX, linspace(0.0, 150.0 / 331.0 * size.width(), bins), true},
            {Op::TranslateY, linspace(0.0, 150.0 / 331.0 * size.height(), bins), true},
            {Op::Rotate, linspace(0.0, 30.0, bins), true},
            {Op::Brightness, linspace(0.0, 0.9, bins), true},
            {Op::Color, linspace(0.0, 0.9, bins), true},
            {Op::Contrast, linspace(0.0, 0.9, bins), true},
            {Op::Sharpness, linspace(0.0, 0.9, bins), true},
            {Op::Posterize, augment::posterizeBins(8, bins, 4.0), false},
            {Op::Solarize, linspace(255.0, 0.0, bins), false},
            {Op::AutoContrast, {}, false},
            {Op::Equalize, {}, false},
        };
    }

    void apply(RunState &run) const override
    {
        // The space is made once, from the input's size, before the first op.
        const std::vector<augment::Space> ops = space(run.size());
        QStringList done;
        for (int i = 0; i < numOps; ++i) {
            const augment::Space &s = ops[size_t(run.rng.randint(0, int64_t(ops.size())))];
            double m = s.magnitudes.empty() ? 0.0 : s.magnitudes[size_t(magnitude)];
            if (s.isSigned && run.rng.randint(0, 2))
                m *= -1.0;
            done.append(augment::applyOp(run, s.op, m, filter, fill));
        }
        run.trace->summary = QStringLiteral("→ ") + done.join(QStringLiteral(", "));
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandAugment>();
    op->numOps = integer(a[u"num_ops"], QStringLiteral("num_ops"));
    op->magnitude = integer(a[u"magnitude"], QStringLiteral("magnitude"));
    op->bins = integer(a[u"num_magnitude_bins"], QStringLiteral("num_magnitude_bins"));
    if (op->bins < 2)
        fail(QStringLiteral("num_magnitude_bins must be at least 2, not %1").arg(op->bins));
    if (op->magnitude < -op->bins || op->magnitude >= op->bins)
        fail(QStringLiteral("index %1 is out of bounds for dimension 0 with size %2 (magnitude "
                            "picks one of the num_magnitude_bins)")
                 .arg(op->magnitude)
                 .arg(op->bins));
    if (op->magnitude < 0)
        op->magnitude += op->bins; // Python's negative index
    op->filter = augment::policyInterpolation(a[u"interpolation"]);
    op->fill = augment::policyFill(a[u"fill"]);
    return op;
}

} // namespace

const TransformDefinition &randAugment()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandAugment"),
        .parameters
        = {opt(QStringLiteral("num_ops"), V::integer(2), integerHint(0, 20)),
           opt(QStringLiteral("magnitude"), V::integer(9), integerHint(0, 1000)),
           opt(QStringLiteral("num_magnitude_bins"), V::integer(31), integerHint(2, 1000)),
           opt(QStringLiteral("interpolation"), V::interpolation(QStringLiteral("NEAREST"))),
           opt(QStringLiteral("fill"), V::none())},
        .description = QStringLiteral("num_ops random augmentations at one strength (RandAugment)"),
        .category = TransformCategory::Policies,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
    };
    return definition;
}

} // namespace ifs::ops

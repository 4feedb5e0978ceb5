// GaussianBlur(kernel_size, sigma=(0.1, 2.0)): one sigma drawn for both axes.
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

class GaussianBlur final : public PreparedOp
{
public:
    int kernelX = 0, kernelY = 0;
    Range sigma;

    void apply(RunState &run) const override
    {
        const double s = run.rng.uniform(sigma.lo, sigma.hi);
        run.data.image = pil::gaussianBlur(run.data.image, kernelX, kernelY, s, s);
        run.trace->summary
            = QStringLiteral("kernel %1 × %2, sigma %3").arg(kernelX).arg(kernelY).arg(fmt(s));
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<GaussianBlur>();
    const std::vector<int> k = sizePair(a[u"kernel_size"], QStringLiteral("kernel_size"));
    op->kernelX = k[0];
    op->kernelY = k[1];
    for (int x : k)
        if (x <= 0 || x % 2 == 0)
            fail(QStringLiteral("Kernel size value should be an odd and positive number"));
    const V &sigma = a[u"sigma"];
    if (isNumber(sigma)) {
        const double x = number(sigma, QStringLiteral("sigma"));
        if (x <= 0)
            fail(QStringLiteral("If sigma is a single number, it must be positive"));
        op->sigma = {x, x};
    } else {
        op->sigma = pair(sigma, QStringLiteral("sigma"));
        if (!(0.0 < op->sigma.lo && op->sigma.lo <= op->sigma.hi))
            fail(QStringLiteral("sigma values should be positive and of the form (min, max)"));
    }
    return op;
}

QList<TransformArgument> newStep(const DatasetHints &)
{
    return {positional(V::integer(3))};
}

} // namespace

const TransformDefinition &gaussianBlur()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("GaussianBlur"),
        .parameters
        = {req(QStringLiteral("kernel_size")), opt(QStringLiteral("sigma"), floatPair(0.1, 2.0))},
        .description = QStringLiteral("Blur with a Gaussian kernel of random sigma"),
        .category = TransformCategory::ColourAndBlur,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops

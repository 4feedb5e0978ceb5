// RandomPosterize(bits, p=0.5): ImageOps.posterize with probability p.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<CoinImageOp>();
    op->p = number(a[u"p"], QStringLiteral("p"));
    const int bits = integer(a[u"bits"], QStringLiteral("bits"));
    op->argument = bits;
    op->function = [](const QImage &image, double b) {
        return pil::posterize(image, int(b));
    };
    op->done = QStringLiteral("%1 bits kept");
    if (bits < 0 || bits > 8)
        op->refusal
            = QStringLiteral("The number if bits should be between 0 and 8. Got %1").arg(bits);
    return op;
}

QList<TransformArgument> newStep(const DatasetHints &)
{
    return {positional(V::integer(4))};
}

} // namespace

const TransformDefinition &randomPosterize()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomPosterize"),
        .parameters
        = {req(QStringLiteral("bits"), integerHint(0, 8)), opt(QStringLiteral("p"), V::real(0.5))},
        .description
        = QStringLiteral("Keep only the top bits of each colour value with probability p"),
        .category = TransformCategory::ColourAndBlur,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops

// RandomAdjustSharpness(sharpness_factor, p=0.5): ImageEnhance.Sharpness with probability p.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<CoinImageOp>();
    op->p = number(a[u"p"], QStringLiteral("p"));
    op->argument = number(a[u"sharpness_factor"], QStringLiteral("sharpness_factor"));
    op->function = [](const QImage &image, double f) {
        return pil::adjustSharpness(image, f);
    };
    op->done = QStringLiteral("sharpness × %1");
    return op;
}

QList<TransformArgument> newStep(const DatasetHints &)
{
    return {positional(V::integer(2))};
}

} // namespace

const TransformDefinition &randomAdjustSharpness()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomAdjustSharpness"),
        .parameters
        = {req(QStringLiteral("sharpness_factor")), opt(QStringLiteral("p"), V::real(0.5))},
        .description = QStringLiteral("Sharpen (factor > 1) or soften (< 1) with probability p"),
        .category = TransformCategory::ColourAndBlur,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops

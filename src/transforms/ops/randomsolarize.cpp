// RandomSolarize(threshold, p=0.5): ImageOps.solarize with probability p.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<CoinImageOp>();
    op->p = number(a[u"p"], QStringLiteral("p"));
    op->argument = number(a[u"threshold"], QStringLiteral("threshold"));
    op->function = [](const QImage &image, double t) {
        return pil::solarize(image, t);
    };
    op->done = QStringLiteral("values from %1 up inverted");
    return op;
}

QList<TransformArgument> newStep(const DatasetHints &)
{
    return {positional(V::integer(192))};
}

} // namespace

const TransformDefinition &randomSolarize()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomSolarize"),
        .parameters = {req(QStringLiteral("threshold")), opt(QStringLiteral("p"), V::real(0.5))},
        .description = QStringLiteral("Invert the values above a threshold with probability p"),
        .category = TransformCategory::ColourAndBlur,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops

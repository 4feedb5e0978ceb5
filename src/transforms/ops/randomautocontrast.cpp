// RandomAutocontrast(p=0.5): ImageOps.autocontrast with probability p.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<CoinImageOp>();
    op->p = number(a[u"p"], QStringLiteral("p"));
    op->function = [](const QImage &image, double) {
        return pil::autocontrast(image);
    };
    op->done = QStringLiteral("contrast stretched");
    return op;
}

} // namespace

const TransformDefinition &randomAutocontrast()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomAutocontrast"),
        .parameters = {opt(QStringLiteral("p"), V::real(0.5))},
        .description = QStringLiteral("Stretch each channel to the full range with probability p"),
        .category = TransformCategory::ColourAndBlur,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
    };
    return definition;
}

} // namespace ifs::ops

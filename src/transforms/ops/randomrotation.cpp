// RandomRotation(degrees, interpolation=NEAREST, expand=False, center=None, fill=0).
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"
#include "transforms/transformop.h"

#include <cmath>

namespace ifs::ops {

namespace {

class RandomRotation final : public PreparedOp
{
public:
    Range degrees;
    pil::Filter filter = pil::Filter::Nearest;
    bool expand = false;
    std::optional<QPointF> center;
    std::vector<double> fill{0.0};

    void apply(RunState &run) const override
    {
        const double angle = run.rng.uniform(degrees.lo, degrees.hi);
        if (expand) {
            // The rotated rectangle's bounding box, as Image.rotate(expand=True) sizes it (up
            // to its rounding).
            const double rad = angle * M_PI / 180.0;
            const double w = run.size().width(), h = run.size().height();
            const double c = std::abs(std::cos(rad)), s = std::abs(std::sin(rad));
            run.checkMemory({channelsOf(run.data.image), qint64(std::ceil(w * c + h * s)) + 2,
                             qint64(std::ceil(w * s + h * c)) + 2, false});
        }
        run.data.image = pil::rotate(run.data.image, angle, filter, expand, center,
                                     pilFill(fill, channelsOf(run.data.image)));
        run.coords.valid = false;
        run.trace->summary = QStringLiteral("angle %1°").arg(fmt(angle));
    }

    DataShape outputShape(const DataShape &input) const override
    {
        DataShape out = input;
        if (expand && input.sizeKnown()) {
            // It depends on the angle drawn: at most the diagonal each way.
            const qint64 side
                = qint64(std::ceil(std::hypot(double(input.width), double(input.height)))) + 2;
            out.width = out.height = side;
            out.exact = false;
        }
        return out;
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandomRotation>();
    op->degrees = angleRange(a[u"degrees"], QStringLiteral("degrees"));
    op->filter = interpolation(a[u"interpolation"]);
    if (op->filter != pil::Filter::Nearest && op->filter != pil::Filter::Bilinear
        && op->filter != pil::Filter::Bicubic)
        fail(QStringLiteral("rotation supports NEAREST, BILINEAR and BICUBIC only"));
    op->expand = boolean(a[u"expand"], QStringLiteral("expand"));
    if (a[u"center"].kind != V::Kind::None) {
        const Range c = pair(a[u"center"], QStringLiteral("center"));
        op->center = QPointF(c.lo, c.hi);
    }
    op->fill = fillValues(a[u"fill"]);
    return op;
}

void review(AdviceWalk &walk, int, const TransformStep &step)
{
    const V expand = stepArgument(step, QStringLiteral("expand"));
    if (expand.kind == V::Kind::Bool && expand.boolValue)
        walk.size.reset(); // the expanded size depends on the angle drawn
}

QList<TransformArgument> newStep(const DatasetHints &)
{
    return {positional(V::integer(15))};
}

} // namespace

const TransformDefinition &randomRotation()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomRotation"),
        .parameters
        = {req(QStringLiteral("degrees")),
           opt(QStringLiteral("interpolation"), V::interpolation(QStringLiteral("NEAREST"))),
           opt(QStringLiteral("expand"), V::boolean(false)),
           opt(QStringLiteral("center"), V::none()), opt(QStringLiteral("fill"), V::integer(0))},
        .description = QStringLiteral("Rotate by a random angle within ± degrees"),
        .category = TransformCategory::FlipAndGeometry,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
        .review = review,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops

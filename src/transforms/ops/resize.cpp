// Resize(size, interpolation=BILINEAR, max_size=None, antialias=None): PIL's resampling.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

class Resize final : public PreparedOp
{
public:
    std::vector<int> size; ///< [s] (the shorter side) or [h, w]
    pil::Filter filter = pil::Filter::Bilinear;
    std::optional<int> maxSize;

    void apply(RunState &run) const override
    {
        const QSize in = run.size();
        const QSize out = outputSize(in);
        if (out.height() <= 0 || out.width() <= 0)
            fail(QStringLiteral("the %1 × %2 image would become %3 × %4 pixels")
                     .arg(in.width())
                     .arg(in.height())
                     .arg(out.width())
                     .arg(out.height()));
        run.resizeTo(out.height(), out.width(), filter);
        run.trace->summary = QStringLiteral("%1 × %2 → %3 × %4")
                                 .arg(in.width())
                                 .arg(in.height())
                                 .arg(out.width())
                                 .arg(out.height());
    }

    DataShape outputShape(const DataShape &input) const override
    {
        if (size.size() == 2)
            return withFixedSize(input, size);
        DataShape out = input;
        if (input.sizeKnown() && input.width > 0 && input.height > 0 && input.width <= kMaxSide
            && input.height <= kMaxSide) {
            const QSize s = outputSize(QSize(int(input.width), int(input.height)));
            out.width = s.width();
            out.height = s.height();
        } else {
            out.width = out.height = -1;
        }
        return out;
    }

private:
    static constexpr qint64 kMaxSide = 1 << 30;

    /// torchvision's _compute_resized_output_size.
    QSize outputSize(QSize in) const
    {
        if (size.size() != 1)
            return QSize(size[1], size[0]);
        const int shortSide = std::min(in.width(), in.height());
        const int longSide = std::max(in.width(), in.height());
        int newShort = size[0];
        int newLong = int(double(newShort) * longSide / shortSide);
        if (maxSize && newLong > *maxSize) {
            newShort = int(double(*maxSize) * newShort / newLong);
            newLong = *maxSize;
        }
        return in.width() <= in.height() ? QSize(newShort, newLong) : QSize(newLong, newShort);
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<Resize>();
    const V &size = a[u"size"];
    if (size.kind == V::Kind::Int) {
        op->size = {integer(size, QStringLiteral("size"))};
    } else if (isSequence(size) && (size.items.size() == 1 || size.items.size() == 2)) {
        for (const V &item : size.items)
            op->size.push_back(integer(item, QStringLiteral("size")));
    } else {
        fail(QStringLiteral("size must be an int or a 1 or 2 element tuple/list, not %1")
                 .arg(toPythonLiteral(size)));
    }
    for (int x : op->size)
        if (x <= 0)
            fail(QStringLiteral("size must be positive, not %1").arg(x));
    op->filter = interpolation(a[u"interpolation"]);
    if (a[u"max_size"].kind != V::Kind::None) {
        op->maxSize = integer(a[u"max_size"], QStringLiteral("max_size"));
        if (op->size.size() != 1)
            fail(QStringLiteral("max_size should only be passed if size specifies the length "
                                "of the smaller edge, i.e. size should be an int"));
        if (*op->maxSize <= op->size[0])
            fail(QStringLiteral("max_size = %1 must be strictly greater than the requested "
                                "size for the smaller edge size = %2")
                     .arg(*op->maxSize)
                     .arg(op->size[0]));
    }
    return op;
}

/// Resize(int) keeps each image's aspect ratio: sizes stay unequal unless a crop follows.
PipelineAdvice unequalSizesAdvice(const TransformPipeline &pipeline, int index, int side)
{
    PipelineAdvice advice;
    advice.severity = PipelineAdvice::Severity::Warning;
    advice.step = index;
    advice.message
        = QStringLiteral("Resize(%1) keeps the aspect ratio, so images of different shapes "
                         "give tensors of different sizes and a batch cannot be stacked "
                         "(\"stack expects each tensor to be equal size\"): use "
                         "Resize((%1, %1)) or add a crop such as CenterCrop(%1).")
              .arg(side);
    TransformPipeline fixed = pipeline;
    TransformArgument &first = fixed.steps[index].args[0];
    first.value = V::tuple({V::integer(side), V::integer(side)});
    if (first.keyword.isEmpty() || first.keyword == u"size")
        advice.fix = fixed;
    advice.fixLabel = QStringLiteral("Use Resize((%1, %1))").arg(side);
    return advice;
}

void review(AdviceWalk &walk, int index, const TransformStep &step)
{
    walk.resized = true;
    const std::vector<double> values = numberList(stepArgument(step, QStringLiteral("size")));
    if (values.size() == 2) {
        walk.size = QSize(int(values[1]), int(values[0]));
    } else if (values.size() == 1) {
        walk.unequalSizes = unequalSizesAdvice(walk.pipeline, index, int(values[0]));
        if (walk.size) {
            const int shortSide = std::min(walk.size->width(), walk.size->height());
            const int longSide = std::max(walk.size->width(), walk.size->height());
            const int newShort = int(values[0]);
            const int newLong = int(double(newShort) * longSide / shortSide);
            walk.size = walk.size->width() <= walk.size->height() ? QSize(newShort, newLong)
                                                                  : QSize(newLong, newShort);
        }
    }
}

QList<TransformArgument> newStep(const DatasetHints &hints)
{
    return {positional(V::integer(hints.side() <= 64 ? hints.side() : 256))};
}

} // namespace

const TransformDefinition &resize()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("Resize"),
        .parameters
        = {req(QStringLiteral("size")),
           opt(QStringLiteral("interpolation"), V::interpolation(QStringLiteral("BILINEAR"))),
           opt(QStringLiteral("max_size"), V::none()), antialiasParameter()},
        .description = QStringLiteral(
            "Scale to a size; an int sets the shorter side and keeps the aspect ratio"),
        .category = TransformCategory::SizeAndCrop,
        .random = false,
        .input = StepInput::Image,
        .prepare = prepare,
        .review = review,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops

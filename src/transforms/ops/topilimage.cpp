// ToPILImage(mode=None): a 1- or 3-channel float tensor back to a PIL image, as
// F.to_pil_image does (pic.mul(255).byte(): truncated, not rounded).
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

class ToPilImage final : public PreparedOp
{
public:
    QString mode; ///< empty: from the channels

    void apply(RunState &run) const override
    {
        const ImageTensor &t = run.data.tensor;
        if (t.channels != 1 && t.channels != 3)
            fail(QStringLiteral("a tensor of %1 channels has no PIL mode here (1: L, 3: RGB)")
                     .arg(t.channels));
        const QString natural = t.channels == 1 ? QStringLiteral("L") : QStringLiteral("RGB");
        if (!mode.isEmpty() && mode != natural)
            fail(QStringLiteral("Incorrect mode (%1) supplied for input type uint8. Should be %2")
                     .arg(mode, natural));
        run.checkMemory({t.channels, t.width, t.height, false});
        QImage image(t.width, t.height,
                     t.channels == 1 ? QImage::Format_Grayscale8 : QImage::Format_RGB888);
        if (image.isNull())
            fail(QStringLiteral("not enough memory"));
        for (int y = 0; y < t.height; ++y) {
            uchar *row = image.scanLine(y);
            for (int x = 0; x < t.width; ++x)
                for (int c = 0; c < t.channels; ++c) {
                    // float32 multiply, then the float-to-uint8 cast (values wrap modulo 256
                    // outside [0, 255], as torch's conversion of an in-range int does).
                    const float v = t.at(c, y, x) * 255.0f;
                    row[x * t.channels + c] = uchar(int(v) & 0xff);
                }
        }
        run.data.tensor = ImageTensor();
        run.data.image = std::move(image);
        run.trace->summary = QStringLiteral("PIL Image %1").arg(natural);
    }

    DataShape outputShape(const DataShape &input) const override
    {
        DataShape out = input;
        out.tensor = false;
        return out;
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<ToPilImage>();
    const V &mode = a[u"mode"];
    if (mode.kind == V::Kind::String)
        op->mode = mode.text;
    else if (mode.kind != V::Kind::None)
        fail(QStringLiteral("mode must be None or a string, not %1").arg(toPythonLiteral(mode)));
    return op;
}

void review(AdviceWalk &walk, int, const TransformStep &)
{
    walk.tensor = false;
}

} // namespace

const TransformDefinition &toPilImage()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("ToPILImage"),
        .parameters = {opt(QStringLiteral("mode"), V::none())},
        .description = QStringLiteral("A tensor back to a PIL image (values × 255, truncated)"),
        .category = TransformCategory::Tensor,
        .random = false,
        .input = StepInput::Tensor,
        .prepare = prepare,
        .review = review,
    };
    return definition;
}

} // namespace ifs::ops

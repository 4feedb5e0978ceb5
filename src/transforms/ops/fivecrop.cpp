// FiveCrop(size) and TenCrop(size, vertical_flip=False): the four corners and the centre (and
// those of the flipped image), a tuple of crops. The preview shows them side by side; training
// refuses them (a DataLoader needs a Lambda that stacks the crops).
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

#include <cstring>

namespace ifs::ops {

namespace {

QString trainingRefusal()
{
    return QStringLiteral(
        "it returns a tuple of crops, which a DataLoader batches only after a Lambda that stacks "
        "them (torch.stack) and a model must then average over: training here takes one image "
        "per sample; use CenterCrop for validation, or RandomCrop for training (the preview "
        "shows the crops side by side)");
}

class MultiCrop final : public PreparedOp
{
public:
    std::vector<int> size; ///< [h, w]
    bool ten = false;
    bool verticalFlip = false;

    /// F.five_crop: top-left, top-right, bottom-left, bottom-right, centre.
    QList<QImage> fiveCrop(const QImage &image) const
    {
        const int h = image.height(), w = image.width(), ch = size[0], cw = size[1];
        if (ch > h || cw > w)
            fail(QStringLiteral("Requested crop size (%1, %2) is bigger than input size (%3, %4)")
                     .arg(ch)
                     .arg(cw)
                     .arg(h)
                     .arg(w));
        const int top = pyRound((h - ch) / 2.0), left = pyRound((w - cw) / 2.0);
        return {pil::crop(image, QRect(0, 0, cw, ch)), pil::crop(image, QRect(w - cw, 0, cw, ch)),
                pil::crop(image, QRect(0, h - ch, cw, ch)),
                pil::crop(image, QRect(w - cw, h - ch, cw, ch)),
                pil::crop(image, QRect(left, top, cw, ch))};
    }

    void apply(RunState &run) const override
    {
        QList<QImage> crops = fiveCrop(run.data.image);
        if (ten)
            crops += fiveCrop(verticalFlip ? pil::flipTopBottom(run.data.image)
                                           : pil::flipLeftRight(run.data.image));
        const int n = int(crops.size()), ch = size[0], cw = size[1];
        run.checkMemory({channelsOf(run.data.image), qint64(cw) * n, ch, false});
        QImage sheet(cw * n, ch, run.data.image.format());
        if (sheet.isNull())
            fail(QStringLiteral("not enough memory"));
        const int bytes = cw * channelsOf(sheet);
        for (int k = 0; k < n; ++k)
            for (int y = 0; y < ch; ++y)
                std::memcpy(sheet.scanLine(y) + k * bytes, crops[k].constScanLine(y),
                            size_t(bytes));
        run.data.image = std::move(sheet);
        run.data.crops = n;
        run.coords.valid = false;
        run.trace->summary = QStringLiteral("%1 crops of %2 × %3%4")
                                 .arg(n)
                                 .arg(cw)
                                 .arg(ch)
                                 .arg(ten ? (verticalFlip ? QStringLiteral(", then flipped top "
                                                                           "to bottom")
                                                          : QStringLiteral(", then mirrored"))
                                          : QString());
    }

    DataShape outputShape(const DataShape &input) const override
    {
        DataShape out = withFixedSize(input, size);
        out.width *= ten ? 10 : 5;
        return out;
    }
};

std::unique_ptr<PreparedOp> prepareFive(const OpArguments &a)
{
    auto op = std::make_unique<MultiCrop>();
    op->size = sizePair(a[u"size"], QStringLiteral("size"));
    return op;
}

std::unique_ptr<PreparedOp> prepareTen(const OpArguments &a)
{
    auto op = std::make_unique<MultiCrop>();
    op->size = sizePair(a[u"size"], QStringLiteral("size"));
    op->ten = true;
    op->verticalFlip = boolean(a[u"vertical_flip"], QStringLiteral("vertical_flip"));
    return op;
}

QList<TransformArgument> newStep(const DatasetHints &hints)
{
    return {positional(V::integer(hints.side()))};
}

} // namespace

const TransformDefinition &fiveCrop()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("FiveCrop"),
        .parameters = {req(QStringLiteral("size"))},
        .description = QStringLiteral("The four corners and the centre as five crops (a tuple)"),
        .category = TransformCategory::SizeAndCrop,
        .random = false,
        .input = StepInput::Image,
        .prepare = prepareFive,
        .newStep = newStep,
        .previewOnly = trainingRefusal(),
    };
    return definition;
}

const TransformDefinition &tenCrop()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("TenCrop"),
        .parameters
        = {req(QStringLiteral("size")), opt(QStringLiteral("vertical_flip"), V::boolean(false))},
        .description = QStringLiteral("FiveCrop of the image and of its mirror: ten crops"),
        .category = TransformCategory::SizeAndCrop,
        .random = false,
        .input = StepInput::Image,
        .prepare = prepareTen,
        .newStep = newStep,
        .previewOnly = trainingRefusal(),
    };
    return definition;
}

} // namespace ifs::ops

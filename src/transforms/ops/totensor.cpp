// ToTensor(): a PIL image to a float32 C × H × W tensor in [0, 1].
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

class ToTensor final : public PreparedOp
{
public:
    void apply(RunState &run) const override
    {
        // Checked here rather than by StepInput::Image, for torchvision's own message.
        if (run.data.isTensor())
            fail(QStringLiteral("the input is already a tensor (ToTensor appears twice?): "
                                "torchvision raises \"pic should be PIL Image or ndarray\""));
        run.checkMemory(outputShape(DataShape::of(run.data)));
        run.data.tensor = imageToTensor(run.data.image);
        run.data.image = QImage();
        run.trace->summary = QStringLiteral("float32 [%1, %2, %3] in [0, 1]")
                                 .arg(run.data.tensor.channels)
                                 .arg(run.data.tensor.height)
                                 .arg(run.data.tensor.width);
    }

    FusedPart fusedPart() const override { return fused::ToTensor{}; }

    DataShape outputShape(const DataShape &input) const override
    {
        DataShape out = input;
        out.tensor = true;
        return out;
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &)
{
    return std::make_unique<ToTensor>();
}

void review(AdviceWalk &walk, int index, const TransformStep &)
{
    if (walk.tensor)
        walk.add(AdviceWalk::Severity::Error, index,
                 QStringLiteral("ToTensor appears twice: the second one receives a tensor and "
                                "torchvision raises \"pic should be PIL Image or ndarray\". "
                                "Remove it."));
    walk.tensor = true;
    walk.toTensorStep = index;
}

} // namespace

const TransformDefinition &toTensor()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("ToTensor"),
        .parameters = {},
        .description
        = QStringLiteral("PIL image to a float tensor C×H×W in [0, 1]: needed before Normalize"),
        .category = TransformCategory::Tensor,
        .random = false,
        .input = StepInput::Any,
        .prepare = prepare,
        .review = review,
    };
    return definition;
}

} // namespace ifs::ops

#include "common/batchview.h"

#include "transforms/transforms.h"

#include <QDialogButtonBox>
#include <QGridLayout>
#include <QLabel>
#include <QPixmap>
#include <QPushButton>
#include <QScrollArea>
#include <QVBoxLayout>

#include <cstring>

namespace ifs {

namespace {

constexpr int kTileSide = 112;
constexpr int kColumns = 8;

} // namespace

Result<BatchPreview> makeBatchPreview(const BatchSource &source, const std::atomic_bool *cancel)
{
    if (source.samples.empty())
        return Error{QStringLiteral("No images to make a batch of")};
    BatchLoader loader(source.samples, source.pipeline, source.options);
    if (Status ok = loader.status(); !ok)
        return ok.error();
    loader.startEpoch(0);
    std::optional<Batch> batch = loader.next();
    if (cancel && cancel->load())
        return Error{QStringLiteral("cancelled"), ErrorCode::Cancelled};
    if (!batch)
        return Error{loader.failures().isEmpty() ? QStringLiteral("The loader made no batch")
                                                 : QStringLiteral("No batch: %1: %2")
                                                       .arg(loader.failures().first().path,
                                                            loader.failures().first().message)};
    BatchPreview preview;
    const std::vector<float> mean = source.pipeline.normalizeMean();
    const std::vector<float> std = source.pipeline.normalizeStd();
    const qsizetype plane = qsizetype(batch->channels) * batch->height * batch->width;
    for (int i = 0; i < batch->count; ++i) {
        ImageTensor t;
        t.channels = batch->channels;
        t.height = batch->height;
        t.width = batch->width;
        t.data.assign(batch->data.begin() + i * plane, batch->data.begin() + (i + 1) * plane);
        preview.images.append(tensorToImage(t, mean, std));
        const int64_t label = batch->labels[size_t(i)];
        preview.labels.append(label >= 0 && label < source.classes.size() ? source.classes[label]
                                                                          : QString::number(label));
    }
    preview.description
        = QStringLiteral("%1 images, tensor [%1, %2, %3, %4], seed %5, epoch 0, batch 0%6%7")
              .arg(batch->count)
              .arg(batch->channels)
              .arg(batch->height)
              .arg(batch->width)
              .arg(source.options.seed)
              .arg(mean.empty() ? QString() : QStringLiteral(", shown denormalised"),
                   source.note.isEmpty() ? QString() : QStringLiteral(", ") + source.note);
    return preview;
}

Result<BatchSource> indexBatchSource(const IndexPtr &index, const TransformPipeline &pipeline,
                                     quint64 seed, int batchSize)
{
    if (!index || index->samples.empty())
        return Error{QStringLiteral("No images to make a batch of")};
    // Training refuses steps the engine cannot reproduce, so the batch view does too.
    Result<CompiledPipeline> compiled = CompiledPipeline::compile(pipeline);
    if (!compiled)
        return compiled.error();
    BatchSource source;
    source.samples.reserve(index->samples.size());
    for (const Sample &s : index->samples)
        source.samples.push_back({index->absolutePath(s), s.classIndex});
    source.classes = index->classes;
    source.pipeline = std::move(compiled).value();
    source.options.batchSize = batchSize;
    source.options.seed = seed;
    source.options.workers = 2;
    return source;
}

Result<BatchPreview> makeBatchPreview(const IndexPtr &index, const TransformPipeline &pipeline,
                                      quint64 seed, int batchSize, const std::atomic_bool *cancel)
{
    Result<BatchSource> source = indexBatchSource(index, pipeline, seed, batchSize);
    if (!source)
        return source.error();
    return makeBatchPreview(source.value(), cancel);
}

BatchView::BatchView(QWidget *parent)
    : QDialog(parent)
    , m_status(new QLabel(this))
    , m_grid(new QGridLayout)
    , m_reseed(new QPushButton(tr("Reseed"), this))
    , m_job(this)
{
    setWindowTitle(tr("Training Batch"));
    setObjectName(QStringLiteral("batchView"));
    m_reseed->setObjectName(QStringLiteral("reseedButton"));
    m_reseed->setToolTip(tr("Draw the batch of the next seed"));
    m_status->setWordWrap(true);
    auto *tiles = new QWidget;
    tiles->setLayout(m_grid);
    auto *scroll = new QScrollArea(this);
    scroll->setWidget(tiles);
    scroll->setWidgetResizable(true);
    auto *buttons = new QDialogButtonBox(QDialogButtonBox::Close, this);
    buttons->addButton(m_reseed, QDialogButtonBox::ActionRole);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(m_reseed, &QPushButton::clicked, this, [this] {
        ++m_seed;
        start();
    });
    auto *layout = new QVBoxLayout(this);
    layout->addWidget(m_status);
    layout->addWidget(scroll, 1);
    layout->addWidget(buttons);
    resize(kColumns * (kTileSide + 12) + 40, 4 * (kTileSide + 30) + 90);

    m_job.onFinished([this](BatchPreview preview) {
        showPreview(preview);
        Q_EMIT batchShown();
    });
    m_job.onFailed([this](const Error &error) {
        clearTiles();
        m_status->setText(tr("No batch: %1").arg(error.message));
        m_reseed->setEnabled(true);
        Q_EMIT batchShown();
    });
}

void BatchView::showBatch(const IndexPtr &index, const TransformPipeline &pipeline, quint64 seed,
                          int batchSize)
{
    showBatch([index, pipeline,
               batchSize](quint64 s) { return indexBatchSource(index, pipeline, s, batchSize); },
              seed);
}

void BatchView::showBatch(BatchSourceFn source, quint64 seed)
{
    m_source = std::move(source);
    m_seed = seed;
    start();
}

QString BatchView::status() const
{
    return m_status->text();
}

void BatchView::start()
{
    m_status->setText(tr("Loading the batch of seed %1…").arg(m_seed));
    m_reseed->setEnabled(false);
    const BatchSourceFn source = m_source;
    const quint64 seed = m_seed;
    m_job.start([source, seed](JobContext<NoProgress> &context) -> Result<BatchPreview> {
        Result<BatchSource> made = source(seed);
        if (!made)
            return made.error();
        return makeBatchPreview(made.value(), context.cancelFlag());
    });
}

void BatchView::clearTiles()
{
    while (QLayoutItem *item = m_grid->takeAt(0)) {
        delete item->widget();
        delete item;
    }
    m_shownLabels.clear();
}

void BatchView::showPreview(const BatchPreview &preview)
{
    clearTiles();
    for (qsizetype i = 0; i < preview.images.size(); ++i) {
        auto *tile = new QLabel;
        const QImage &image = preview.images[i];
        tile->setPixmap(QPixmap::fromImage(
            image.scaled(kTileSide, kTileSide, Qt::KeepAspectRatio, Qt::SmoothTransformation)));
        tile->setAlignment(Qt::AlignCenter);
        auto *caption = new QLabel(preview.labels[i]);
        caption->setAlignment(Qt::AlignCenter);
        auto *cell = new QWidget;
        auto *cellLayout = new QVBoxLayout(cell);
        cellLayout->setContentsMargins(2, 2, 2, 2);
        cellLayout->addWidget(tile);
        cellLayout->addWidget(caption);
        m_grid->addWidget(cell, int(i) / kColumns, int(i) % kColumns);
        m_shownLabels.append(preview.labels[i]);
    }
    m_status->setText(preview.description);
    m_reseed->setEnabled(true);
}

} // namespace ifs

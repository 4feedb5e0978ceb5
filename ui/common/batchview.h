#pragma once

// The batch view (fastai's show_batch): one whole training batch as the BatchLoader makes it
// for training (the same seeds, order and transforms), shown as a grid of images with their
// class names, reseedable. The work runs in a BackgroundJob.

#include "common/backgroundjob.h"
#include "dataset/imagefolder.h"
#include "transforms/batchloader.h"
#include "transforms/transformspec.h"

#include <QDialog>
#include <QImage>
#include <QList>
#include <QStringList>

class QGridLayout;
class QLabel;
class QPushButton;

namespace ifs {

/// One batch made displayable.
struct BatchPreview
{
    QList<QImage> images; ///< denormalised when the pipeline ends with Normalize
    QStringList labels; ///< class names, one per image
    QString description; ///< "32 images, tensor [32, 3, 224, 224], seed 7, …"
};

/// What a batch is made from: the samples, class names, pipeline and loader options a training
/// run would use.
struct BatchSource
{
    std::vector<LoaderSample> samples;
    QStringList classes;
    CompiledPipeline pipeline;
    BatchLoaderOptions options;
    QString note; ///< appended to the description ("class-balanced sampling")
};
/// Makes the BatchSource for a seed, off the GUI thread (it may scan and split the dataset).
using BatchSourceFn = std::function<Result<BatchSource>(quint64 seed)>;

/// The first batch of epoch 0, as BatchLoader makes it from the source.
Result<BatchPreview> makeBatchPreview(const BatchSource &source,
                                      const std::atomic_bool *cancel = nullptr);

/// The samples of `index` with `pipeline` compiled (refused as training refuses it), shuffled
/// with `seed`, in batches of batchSize.
Result<BatchSource> indexBatchSource(const IndexPtr &index, const TransformPipeline &pipeline,
                                     quint64 seed, int batchSize);

/// The same for the samples of `index` and `pipeline` (refused as training refuses it), shuffled
/// with `seed`, in batches of batchSize.
Result<BatchPreview> makeBatchPreview(const IndexPtr &index, const TransformPipeline &pipeline,
                                      quint64 seed, int batchSize,
                                      const std::atomic_bool *cancel = nullptr);

class BatchView : public QDialog
{
    Q_OBJECT

public:
    explicit BatchView(QWidget *parent = nullptr);

    /// Shows the batch of `pipeline` over `index` for `seed` (replacing what was shown).
    void showBatch(const IndexPtr &index, const TransformPipeline &pipeline, quint64 seed,
                   int batchSize = 32);
    /// Shows the batch the source makes for `seed` (a training run's: its split, options).
    void showBatch(BatchSourceFn source, quint64 seed);

    quint64 seed() const { return m_seed; }
    /// The tiles' captions, in order (for tests).
    QStringList shownLabels() const { return m_shownLabels; }
    /// "Loading…", the description, or the error.
    QString status() const;

Q_SIGNALS:
    /// A batch was shown (or failed to be made).
    void batchShown();

private:
    void start();
    void showPreview(const BatchPreview &preview);
    void clearTiles();

    BatchSourceFn m_source;
    quint64 m_seed = 0;
    QStringList m_shownLabels;
    QLabel *m_status;
    QGridLayout *m_grid;
    QPushButton *m_reseed;
    BackgroundJob<BatchPreview> m_job;
};

} // namespace ifs

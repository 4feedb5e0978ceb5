#pragma once

// The batch view (fastai's show_batch): one whole training batch as the BatchLoader makes it
// for training (the same seeds, order and transforms), shown as a grid of images with their
// class names, reseedable. The work runs in a BackgroundJob.

#include "common/backgroundjob.h"
#include "dataset/imagefolder.h"
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

/// The first batch of epoch 0 for `seed`, as BatchLoader makes it from these samples with this
/// pipeline (at most batchSize images). Fails with the loader's or the pipeline's message.
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

    IndexPtr m_index;
    TransformPipeline m_pipeline;
    quint64 m_seed = 0;
    int m_batchSize = 32;
    QStringList m_shownLabels;
    QLabel *m_status;
    QGridLayout *m_grid;
    QPushButton *m_reseed;
    BackgroundJob<BatchPreview> m_job;
};

} // namespace ifs

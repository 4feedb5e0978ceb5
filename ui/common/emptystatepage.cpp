#include "common/emptystatepage.h"

#include "common/icons.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

namespace ifs {

EmptyStatePage::EmptyStatePage(const QString &iconName, const QString &title, const QString &hint,
                               QWidget *parent)
    : QWidget(parent)
{
    auto *icon = new QLabel(this);
    icon->setPixmap(themedIcon(iconName).pixmap(96, 96));
    icon->setAlignment(Qt::AlignCenter);
    auto *titleLabel = new QLabel(title, this);
    QFont big = titleLabel->font();
    big.setPointSizeF(big.pointSizeF() * 1.6);
    big.setBold(true);
    titleLabel->setFont(big);
    titleLabel->setAlignment(Qt::AlignCenter);
    auto *hintLabel = new QLabel(hint, this);
    hintLabel->setAlignment(Qt::AlignCenter);
    hintLabel->setWordWrap(true);

    m_open = new QPushButton(themedIcon(QStringLiteral("document-open")), tr("Open Folder…"), this);
    m_sample = new QPushButton(tr("Open Sample Dataset (Fashion-MNIST)"), this);
    connect(m_open, &QPushButton::clicked, this, &EmptyStatePage::openFolderRequested);
    connect(m_sample, &QPushButton::clicked, this, &EmptyStatePage::openSampleRequested);
    auto *buttons = new QHBoxLayout;
    buttons->addStretch(1);
    buttons->addWidget(m_open);
    buttons->addWidget(m_sample);
    buttons->addStretch(1);

    m_column = new QVBoxLayout;
    m_column->setSpacing(12);
    m_column->addStretch(2);
    m_column->addWidget(icon);
    m_column->addWidget(titleLabel);
    m_column->addWidget(hintLabel);
    m_column->addSpacing(8);
    m_column->addLayout(buttons);
    m_column->addStretch(3);
    auto *outer = new QHBoxLayout(this);
    outer->addStretch(1);
    outer->addLayout(m_column, 3);
    outer->addStretch(1);
}

void EmptyStatePage::addBelow(QWidget *widget, int spacing)
{
    // Before the final stretch.
    const int at = m_column->count() - 1;
    m_column->insertSpacing(at, spacing);
    m_column->insertWidget(at + 1, widget, 0, Qt::AlignHCenter);
}

} // namespace ifs
